//! The subcommands of `tcanet-export`, one module each, and what they share:
//! flag ranges ([`args`]), output checks ([`outputs`]) and exit statuses
//! ([`status`]), following `tcanet_cli`'s convention.
pub mod args;
pub mod bench;
pub mod export;
pub mod inspect;
pub mod outputs;
pub mod status;
pub mod triton;
pub mod verify;
