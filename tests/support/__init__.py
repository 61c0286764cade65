"""Test support: real local servers on 127.0.0.1 with ephemeral ports."""
