//! Webhook subscriptions per account (reference C.5): `GET`, `POST` and `DELETE
//! /me/subscribed_apps`, Instagram Login only. A subscription names the fields the app is
//! told about for that account; the fields are Instagram Login's (C.5), others are refused
//! with code 100.

use crate::state::World;
use crate::wire::{GraphFailure, Req};
use serde_json::{Value, json};

/// The fields an app may subscribe an account to.
const FIELDS: &[&str] = &[
    "comments",
    "live_comments",
    "mentions",
    "messages",
    "message_reactions",
    "messaging_postbacks",
    "messaging_referral",
    "messaging_seen",
];

impl World {
    /// Answers `/{user}/subscribed_apps`, or `None` for any other path.
    pub(crate) fn subscriptions_route(
        &mut self,
        req: &Req,
        segments: &[&str],
        user: usize,
    ) -> Option<Result<Vec<u8>, GraphFailure>> {
        if self.options.platform != crate::MockPlatform::InstagramLogin {
            return None;
        }
        let [node, "subscribed_apps"] = segments else {
            return None;
        };
        if !self.is_self(node, user) {
            return None;
        }
        let body = match req.method {
            http::Method::GET => Ok(self.subscribed(user)),
            http::Method::POST => self.subscribe(req, user),
            http::Method::DELETE => {
                self.subscriptions.remove(&user);
                Ok(json!({"success": true}))
            }
            ref other => Err(super::oauth::unsupported_method(other)),
        };
        Some(body.and_then(|value| crate::wire::render_json(&value)))
    }

    /// The app's subscription for `user`: its fields, or no entry.
    fn subscribed(&self, user: usize) -> Value {
        match self.subscriptions.get(&user) {
            Some(fields) => json!({"data": [{
                "id": self.app.id,
                "name": self.app.name,
                "subscribed_fields": fields,
            }]}),
            None => json!({"data": []}),
        }
    }

    /// `POST ?subscribed_fields=a,b`: replaces the fields of `user`'s subscription.
    fn subscribe(&mut self, req: &Req, user: usize) -> Result<Value, GraphFailure> {
        let fields: Vec<String> = req
            .param("subscribed_fields")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned)
            .collect();
        if fields.is_empty() {
            return Err(super::graph::refused(
                "The parameter subscribed_fields is required",
            ));
        }
        if let Some(unknown) = fields.iter().find(|f| !FIELDS.contains(&f.as_str())) {
            return Err(super::graph::refused(&format!(
                "Param subscribed_fields[{unknown}] must be one of {{{}}}",
                FIELDS.join(", ")
            )));
        }
        self.subscriptions.insert(user, fields);
        Ok(json!({"success": true}))
    }
}
