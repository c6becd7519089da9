"""Simulated phones: seeded devices that enroll, chat and upload feedback over real HTTP."""
