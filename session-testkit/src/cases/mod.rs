//! The conformance cases, one `async fn(CaseContext)` each. [`store_conformance!`](crate::store_conformance)
//! runs every one of them; engine crates may also call single cases through
//! [`run_case`](crate::run_case).

mod boundary;
mod lifecycle;
mod owner;
mod session;
mod store;

pub use boundary::*;
pub use lifecycle::*;
pub use owner::*;
pub use session::*;
pub use store::*;

pub use crate::fixtures::{envelope, fresh_id, in_ms, payload_of};
