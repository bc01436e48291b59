//! nslab: a workshop in one binary for Linux namespaces and cgroups.

mod error;
mod fsutil;
mod kernel;
mod ledger;
mod views;

fn main() {
    kernel::sys::install_interrupt_handler();
}
