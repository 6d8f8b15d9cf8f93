//! Webhooks: telling clients that a file ended (FINISHED, FAILED) or went away (reset,
//! deleted), durably. A tour:
//!
//! - [`allow`]: which targets may be reached at all (checked before connecting).
//! - [`deliver`]: the loop that sends due deliveries with exponential back-off.
//! - [`signing`]: the signature every delivery carries, and the secret it is made with.
//! - [`notices`]: notifications in a protocol's own form, rendered by the face that asked.
//!
//! The deliveries themselves (`webhook_outbox`), the tokens clients validated
//! (`webhook_tokens`) and the sweep that turns ended files into deliveries are the store's
//! (`trd_core::store::webhooks`).
//!
//! Workers know nothing of webhooks: the API notices ended files in MongoDB, so a delivery
//! survives any process dying, including the API itself.

pub mod allow;
pub mod deliver;
pub mod notices;
pub mod signing;
