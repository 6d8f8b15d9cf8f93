//! Webhooks: telling clients that a file ended (FINISHED, FAILED) or went away (reset,
//! deleted), durably. A tour:
//!
//! - [`allow`]: which targets may be reached at all (checked before connecting).
//! - [`outbox`]: deliveries stored in MongoDB (`webhook_outbox`), the tokens clients validated
//!   (`webhook_tokens`), and the sweep that turns ended files into deliveries.
//! - [`deliver`]: the loop that sends due deliveries with exponential back-off.
//!
//! Workers know nothing of webhooks: the API notices ended files in MongoDB, so a delivery
//! survives any process dying, including the API itself.

pub mod allow;
pub mod deliver;
pub mod outbox;

pub use outbox::{enqueue_removal, Event};
