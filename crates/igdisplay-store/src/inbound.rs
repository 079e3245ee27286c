//! Meta's webhooks kept before they are acknowledged (reference C.5): [`SqlStore`] is a
//! [`WebhookSink`]. A verified delivery is recorded by the SHA-256 of its body (the same
//! delivery sent again is kept once) and each of its entries written to the outbox as an
//! [`Event::InstagramNotification`](crate::Event::InstagramNotification), in one
//! transaction; the receiver answers 200 only after it committed. The outbox then delivers
//! them to the application's webhook like every event, at least once and in order per
//! account, from any instance. A keeper prunes the hashes with the outbox's retention
//! (`KeeperSettings::retention`, 7 days by default; Meta retries within hours); a deployment
//! that receives webhooks but runs no keeper keeps them.

use crate::error::Error;
use crate::store::SqlStore;
use igdisplay_auth::webhooks::{VerifiedDelivery, WebhookSink};

impl SqlStore {
    /// Keeps `delivery`: `true` when it was new, `false` when a delivery with the same body
    /// was kept already (nothing is written twice).
    ///
    /// # Errors
    ///
    /// [`Error::Database`] when it could not be kept: the delivery must not be acknowledged.
    pub async fn keep_webhook(&self, delivery: &VerifiedDelivery) -> Result<bool, Error> {
        let kept = self
            .accounts
            .keep_inbound(&delivery.hash, &delivery.notification.entry)
            .await?;
        if kept {
            self.wrote_event();
        }
        Ok(kept)
    }
}

#[async_trait::async_trait]
impl WebhookSink for SqlStore {
    async fn keep(&self, delivery: &VerifiedDelivery) -> Result<(), igdisplay_http::BoxError> {
        self.keep_webhook(delivery).await.map(|_| ()).map_err(Into::into)
    }
}
