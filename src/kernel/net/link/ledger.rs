//! Host links on the ledger: recorded before they exist, identified once made, forgotten
//! once gone or moved away. Links inside a named namespace go with it, unrecorded.

use crate::kernel::net::rtnl::Rtnl;
use crate::ledger::{self, Resource};
use anyhow::Result;

impl Rtnl {
    /// Host links are recorded in the ledger before they exist; links made inside a
    /// named namespace go with it. True when this call added the record.
    pub(super) fn record_host_link(&self, name: &str) -> Result<bool> {
        let r = Resource::Link {
            name: name.to_string(),
        };
        if !self.is_host() || ledger::current().contains(&r) {
            return Ok(false);
        }
        ledger::record(r)?;
        Ok(true)
    }

    /// Once a recorded host link exists: note its ifindex, so that a later link of the
    /// same name is not taken for it.
    pub(super) fn identify_host_link(&self, name: &str, added: bool) {
        if added {
            crate::kernel::removal::identify(&Resource::Link {
                name: name.to_string(),
            });
        }
    }

    /// Undo a record made for a link that could not be created (EEXIST: the name is
    /// someone else's, or an earlier creation of ours that stays recorded).
    pub(super) fn unrecord(&self, name: &str, added: bool) {
        if added {
            self.forget_host_link(name);
        }
    }

    pub(super) fn forget_host_link(&self, name: &str) {
        if self.is_host() {
            ledger::forget(&Resource::Link {
                name: name.to_string(),
            });
        }
    }
}
