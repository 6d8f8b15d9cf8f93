//! Who may use the service: API keys, users, refresh tokens, and the audit trail of what each
//! changed.
//!
//! Collections:
//! - `api_keys`: one document per key; the secret is stored only as its SHA-256 digest (keys
//!   are 256 random bits, so a fast digest is as safe as a slow one and keeps every request
//!   cheap). Deleting the document revokes the key at once for every API process, because
//!   every request reads it.
//! - `users`: one document per user name; the password is stored only as an Argon2 hash.
//! - `refresh_tokens`: the SHA-256 digest of each refresh token, its user and expiry; a token
//!   is consumed (marked used) by the one refresh that spends it.
//! - `audit`: one document per state change, appended and never updated.

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, Document};
use mongodb::IndexModel;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{is_duplicate_key, MongoResultExt};
use super::{Store, StoreResult};
use crate::domain::BatchName;

/// What a credential allows. Each scope includes the ones before it: `operate` can read,
/// `admin` can do everything.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Records, status, results.
    Read,
    /// Upload, register, start, stop, soft reset, delete of records, webhook validation.
    Operate,
    /// Audio deletion on disk, hard reset, keys, users, the audit trail.
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Operate => "operate",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Scope> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "read" => Some(Scope::Read),
            "operate" => Some(Scope::Operate),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API key as stored: never its secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKey {
    #[serde(rename = "_id")]
    pub id: ObjectId,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The batches the key is limited to; `None`: every batch.
    pub batches: Option<Vec<BatchName>>,
    /// Hex SHA-256 of the key's secret part.
    pub secret_sha256: String,
    pub created_at: DateTime<Utc>,
    /// Who created it (an audit principal).
    pub created_by: String,
}

/// A user as stored: the password only as its Argon2 hash (PHC string).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    #[serde(rename = "_id")]
    pub name: String,
    pub email: Option<String>,
    pub password_hash: String,
    pub scopes: Vec<Scope>,
    pub batches: Option<Vec<BatchName>>,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
}

/// A refresh token as stored: its digest, owner and expiry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshToken {
    /// Hex SHA-256 of the token.
    #[serde(rename = "_id")]
    pub sha256: String,
    pub user: String,
    /// Unix seconds.
    pub expires_at: i64,
    pub used: bool,
}

/// One state change: who did what to which target, and how it ended.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    /// `key:<id>`, `user:<name>`, `admin-token` or `anonymous@<address>`.
    pub principal: String,
    /// What was done (`start_batch`, `create_key`, `register_user`…).
    pub action: String,
    /// What it was done to: the request's path, without credentials.
    pub target: String,
    /// The HTTP status it ended with.
    pub outcome: u16,
    /// The address the request came from.
    pub address: Option<String>,
}

/// The credential collections, read raw: for the tests that check no secret is stored.
pub const CREDENTIAL_COLLECTIONS: [&str; 3] = ["api_keys", "users", "refresh_tokens"];

impl Store {
    fn api_keys(&self) -> mongodb::Collection<ApiKey> {
        self.database().collection("api_keys")
    }

    fn users(&self) -> mongodb::Collection<User> {
        self.database().collection("users")
    }

    fn refresh_tokens(&self) -> mongodb::Collection<RefreshToken> {
        self.database().collection("refresh_tokens")
    }

    fn audit(&self) -> mongodb::Collection<AuditEntry> {
        self.database().collection("audit")
    }

    pub(super) async fn ensure_identity_indexes(&self) -> StoreResult<()> {
        self.refresh_tokens()
            .create_index(IndexModel::builder().keys(doc! {"user": 1}).build())
            .await
            .store()?;
        Ok(())
    }

    pub async fn insert_key(&self, key: &ApiKey) -> StoreResult<()> {
        self.api_keys().insert_one(key).await.store()?;
        Ok(())
    }

    pub async fn find_key(&self, id: ObjectId) -> StoreResult<Option<ApiKey>> {
        self.api_keys().find_one(doc! {"_id": id}).await.store()
    }

    pub async fn list_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.api_keys()
            .find(doc! {})
            .sort(doc! {"_id": 1})
            .await
            .store()?
            .try_collect()
            .await
            .store()
    }

    pub async fn count_keys(&self) -> StoreResult<u64> {
        self.api_keys().count_documents(doc! {}).await.store()
    }

    /// Revokes a key; whether it existed.
    pub async fn delete_key(&self, id: ObjectId) -> StoreResult<bool> {
        let result = self.api_keys().delete_one(doc! {"_id": id}).await.store()?;
        Ok(result.deleted_count == 1)
    }

    /// Adds a user; `false` when the name is taken.
    pub async fn insert_user(&self, user: &User) -> StoreResult<bool> {
        match self.users().insert_one(user).await {
            Ok(_) => Ok(true),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(super::StoreError::from_mongo(e)),
        }
    }

    pub async fn find_user(&self, name: &str) -> StoreResult<Option<User>> {
        self.users().find_one(doc! {"_id": name}).await.store()
    }

    /// Removes a user and every refresh token they hold; whether the user existed.
    pub async fn delete_user(&self, name: &str) -> StoreResult<bool> {
        let result = self.users().delete_one(doc! {"_id": name}).await.store()?;
        self.refresh_tokens()
            .delete_many(doc! {"user": name})
            .await
            .store()?;
        Ok(result.deleted_count == 1)
    }

    pub async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<()> {
        self.refresh_tokens().insert_one(token).await.store()?;
        Ok(())
    }

    /// Spends a refresh token: marks it used and returns it, if it was unused and unexpired.
    /// One atomic update, so two refreshes racing with one token cannot both win.
    pub async fn spend_refresh_token(&self, sha256: &str) -> StoreResult<Option<RefreshToken>> {
        self.refresh_tokens()
            .find_one_and_update(
                doc! {"_id": sha256, "used": false, "expires_at": {"$gt": Utc::now().timestamp()}},
                doc! {"$set": {"used": true}},
            )
            .await
            .store()
    }

    pub async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        self.audit().insert_one(entry).await.store()?;
        Ok(())
    }

    /// The newest `limit` audit entries matching `filter` (a principal, an action), newest
    /// first (ids grow with time).
    pub async fn read_audit(&self, filter: Document, limit: i64) -> StoreResult<Vec<AuditEntry>> {
        self.audit()
            .find(filter)
            .sort(doc! {"_id": -1})
            .limit(limit)
            .await
            .store()?
            .try_collect()
            .await
            .store()
    }
}
