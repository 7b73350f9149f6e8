//! End-to-end tests of the toolkit live in tests/tests/.
