"""Helpers shared by the tests (builders, loopback servers, fakes); no test file imports another."""
