//! `/trd/query/collection/{collection}`: matching documents as newline-delimited JSON.
//!
//! Only listed collections and fields can be queried or projected, so internal state (leases,
//! webhook tokens, raw audio) never leaves the service and every filter can be typed before
//! it reaches MongoDB. A field given twice matches any of its values.

use futures::{Stream, StreamExt};
use mongodb::bson::{doc, oid::ObjectId, Bson, Document};
use rocket::http::uri::Origin;
use rocket::http::ContentType;
use rocket::response::stream::ByteStream;
use rocket::{get, State};
use serde::Serialize;
use serde_json::Value;
use trd_core::domain::{Control, SegmentStatus, Status};
use trd_core::store::Page;
use utoipa::ToSchema;

use crate::app::App;
use crate::error::{ApiError, ApiResult};
use crate::identity::{Access, Principal, Read};
use crate::shapes::http_date;

/// How a field's value is read from the query string; `None`: it can be projected, not
/// filtered on.
#[derive(Clone, Copy)]
enum Filter {
    Text,
    Id,
    Integer,
    Number,
    Control,
    Status,
    SegmentStatus,
    None,
}

struct Collection {
    name: &'static str,
    fields: &'static [(&'static str, Filter)],
}

const COLLECTIONS: [Collection; 2] = [
    Collection {
        name: "audiofiles",
        fields: &[
            ("_id", Filter::Id),
            ("batch", Filter::Text),
            ("filename", Filter::Text),
            ("format", Filter::Text),
            ("size", Filter::Integer),
            ("md5", Filter::Text),
            ("control", Filter::Control),
            ("status", Filter::Status),
            ("total_segments", Filter::Integer),
            ("total_speech", Filter::Number),
            ("create_date", Filter::None),
            ("last_update", Filter::None),
            ("info", Filter::None),
            ("audioChannels", Filter::None),
            ("error", Filter::None),
            ("warnings", Filter::None),
        ],
    },
    Collection {
        name: "segments",
        fields: &[
            ("_id", Filter::Id),
            ("audiofile_id", Filter::Id),
            ("channel", Filter::Integer),
            ("start", Filter::Number),
            ("end", Filter::Number),
            ("speaker", Filter::Text),
            ("score", Filter::Integer),
            ("status", Filter::SegmentStatus),
            ("text", Filter::Text),
            ("reason", Filter::Text),
            ("words", Filter::None),
        ],
    },
];

impl Collection {
    fn find(name: &str) -> ApiResult<&'static Collection> {
        COLLECTIONS.iter().find(|c| c.name == name).ok_or_else(|| {
            let known: Vec<&str> = COLLECTIONS.iter().map(|c| c.name).collect();
            ApiError::BadRequest(format!(
                "unknown collection '{name}'; queryable collections: {}",
                known.join(", ")
            ))
        })
    }

    fn field(&self, name: &str) -> ApiResult<Filter> {
        self.fields
            .iter()
            .find(|(f, _)| *f == name)
            .map(|(_, filter)| *filter)
            .ok_or_else(|| {
                let known: Vec<&str> = self.fields.iter().map(|(f, _)| *f).collect();
                ApiError::BadRequest(format!(
                    "unknown field '{name}' in collection '{}'; its fields: {}",
                    self.name,
                    known.join(", ")
                ))
            })
    }

    /// The MongoDB filter and projection the query string asks for.
    fn parse(&self, query: &[(String, String)]) -> ApiResult<(Document, Document)> {
        let mut filter = Document::new();
        let mut projection = Document::new();
        for (key, value) in query {
            if key == "project" {
                self.field(value)?;
                projection.insert(value.clone(), 1);
                continue;
            }
            let value = typed(key, value, self.field(key)?)?;
            match filter.get_mut(key) {
                None => {
                    filter.insert(key.clone(), value);
                }
                Some(Bson::Document(any)) => {
                    if let Ok(values) = any.get_array_mut("$in") {
                        values.push(value);
                    }
                }
                Some(previous) => {
                    let first = previous.clone();
                    *previous = Bson::Document(doc! {"$in": [first, value]});
                }
            }
        }
        if projection.is_empty() {
            for (field, _) in self.fields {
                projection.insert(*field, 1);
            }
        }
        Ok((filter, projection))
    }
}

fn enum_value<T: serde::de::DeserializeOwned>(
    field: &str,
    value: &str,
    names: impl Iterator<Item = &'static str>,
) -> ApiResult<Bson> {
    serde_json::from_value::<T>(Value::String(value.to_owned()))
        .map(|_| Bson::String(value.to_owned()))
        .map_err(|_| {
            ApiError::BadRequest(format!(
                "'{value}' is not a valid {field}; one of: {}",
                names.collect::<Vec<_>>().join(", ")
            ))
        })
}

fn typed(field: &str, value: &str, filter: Filter) -> ApiResult<Bson> {
    let bad = |what: &str| ApiError::BadRequest(format!("{field} must be {what}, not '{value}'"));
    Ok(match filter {
        Filter::Text => Bson::String(value.to_owned()),
        Filter::Id => Bson::ObjectId(
            ObjectId::parse_str(value).map_err(|_| bad("24 hexadecimal characters"))?,
        ),
        Filter::Integer => Bson::Int64(value.parse().map_err(|_| bad("an integer"))?),
        Filter::Number => Bson::Double(
            value
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad("a number"))?,
        ),
        Filter::Control => {
            enum_value::<Control>(field, value, Control::ALL.iter().map(|c| c.as_str()))?
        }
        Filter::Status => {
            enum_value::<Status>(field, value, Status::ALL.iter().map(|s| s.as_str()))?
        }
        Filter::SegmentStatus => enum_value::<SegmentStatus>(
            field,
            value,
            SegmentStatus::ALL.iter().map(|s| s.as_str()),
        )?,
        Filter::None => {
            return Err(ApiError::BadRequest(format!(
                "{field} can be projected but not filtered on"
            )))
        }
    })
}

/// BSON as the rest of the API shows it: ids as hex strings, dates as HTTP dates.
fn to_json(value: Bson) -> Value {
    match value {
        Bson::ObjectId(id) => Value::String(id.to_hex()),
        Bson::DateTime(d) => Value::String(http_date(d)),
        Bson::Document(d) => Value::Object(d.into_iter().map(|(k, v)| (k, to_json(v))).collect()),
        Bson::Array(a) => Value::Array(a.into_iter().map(to_json).collect()),
        other => other.into_relaxed_extjson(),
    }
}

/// What a principal limited to batches may see of `collection`: its batches' records, and
/// their segments.
async fn tenant_filter(
    app: &App,
    who: &Principal,
    collection: &str,
) -> ApiResult<Option<Document>> {
    let Some(batches) = who.batch_filter() else {
        return Ok(None);
    };
    let own = doc! {"batch": {"$in": &batches}};
    if collection == "audiofiles" {
        return Ok(Some(own));
    }
    let ids: Vec<ObjectId> = app
        .store
        .find_documents("audiofiles", own, doc! {"_id": 1})
        .await?
        .filter_map(|d| async move { d.ok()?.get_object_id("_id").ok() })
        .collect()
        .await;
    Ok(Some(doc! {"audiofile_id": {"$in": ids}}))
}

/// Which collection the query reads (contract section 7).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QueryCollection {
    Audiofiles,
    Segments,
}

#[utoipa::path(
    tag = "query",
    summary = "Matching documents as newline-delimited JSON",
    description = "Equality filters on listed fields (`field=value`, repeatable: any value \
        matches) and an optional projection (`project=field`, repeatable).",
    params(
        ("collection" = QueryCollection, Path),
        ("project" = Option<Vec<String>>, Query, description = "Fields to return"),
        ("limit" = Option<u64>, Query, description = "At most this many documents (1–10000); none: all"),
        ("skip" = Option<u64>, Query, description = "Leave out this many first documents (in `_id` order)"),
    ),
    responses((status = 200, description = "One JSON document per line", content_type = "application/x-ndjson", body = String))
)]
#[get("/query/collection/<collection>")]
pub async fn query_collection(
    app: &State<App>,
    who: Access<Read>,
    collection: &str,
    uri: &Origin<'_>,
) -> ApiResult<(ContentType, ByteStream<impl Stream<Item = Vec<u8>>>)> {
    let collection = Collection::find(collection)?;
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            q.segments()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    // Paging is not a filter: taken out before the fields are read.
    let (paging, query): (Vec<_>, Vec<_>) = query
        .into_iter()
        .partition(|(k, _)| k == "limit" || k == "skip");
    let single = |name: &str| -> ApiResult<Option<&str>> {
        let mut values = paging.iter().filter(|(k, _)| k == name);
        let first = values.next().map(|(_, v)| v.as_str());
        if values.next().is_some() {
            return Err(ApiError::BadRequest(format!("{name} is given twice")));
        }
        Ok(first)
    };
    let page = Page::parse(single("limit")?, single("skip")?)?;
    let (filter, projection) = collection.parse(&query)?;
    let filter = match tenant_filter(app, &who, collection.name).await? {
        Some(tenant) => doc! {"$and": [filter, tenant]},
        None => filter,
    };
    let cursor = app
        .store
        .find_page(collection.name, filter, projection, page)
        .await?;
    let name = collection.name;
    // Headers are gone once the first line is out: a later failure can only end the stream.
    let lines = cursor
        .take_while(move |next| {
            if let Err(e) = next {
                tracing::error!(collection = name, error = %e, "query cut short");
            }
            futures::future::ready(next.is_ok())
        })
        .filter_map(|next| async move {
            let mut line = serde_json::to_vec(&to_json(Bson::Document(next.ok()?))).ok()?;
            line.push(b'\n');
            Some(line)
        });
    Ok((
        ContentType::new("application", "x-ndjson"),
        ByteStream(lines),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(raw: &[(&str, &str)]) -> Vec<(String, String)> {
        raw.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn filters_are_typed_and_repeats_mean_any_of() {
        let files = Collection::find("audiofiles").unwrap();
        let (filter, projection) = files
            .parse(&pairs(&[
                ("status", "RECOGNIZED"),
                ("status", "DIARIZED"),
                ("size", "42"),
                ("project", "filename"),
            ]))
            .unwrap();
        assert_eq!(
            filter,
            doc! {"status": {"$in": ["RECOGNIZED", "DIARIZED"]}, "size": 42i64}
        );
        assert_eq!(projection, doc! {"filename": 1});
    }

    /// The fields a query may read are the contract shapes' own (plus the ids that link a
    /// segment to its file): a field added to a shape must be listed here, or the test fails.
    #[test]
    fn listed_fields_are_the_contract_shapes_fields() {
        use std::collections::BTreeSet;
        use utoipa::openapi::schema::Schema;
        use utoipa::openapi::RefOr;
        use utoipa::PartialSchema;

        fn properties<T: PartialSchema>() -> BTreeSet<String> {
            match T::schema() {
                RefOr::T(Schema::Object(o)) => o.properties.keys().cloned().collect(),
                _ => panic!("not an object schema"),
            }
        }
        fn listed(name: &str) -> BTreeSet<String> {
            let c = Collection::find(name).unwrap();
            c.fields.iter().map(|(f, _)| (*f).to_owned()).collect()
        }
        let mut record = properties::<crate::shapes::RecordView>();
        record.remove("webhooks");
        assert_eq!(listed("audiofiles"), record);
        let mut segment = properties::<crate::shapes::SegmentView>();
        segment.extend(["_id".to_owned(), "audiofile_id".to_owned()]);
        assert_eq!(listed("segments"), segment);
    }

    #[test]
    fn unknown_fields_values_and_collections_are_refused() {
        let files = Collection::find("audiofiles").unwrap();
        for bad in [
            ("lease", "x"),
            ("control", "DONE"),
            ("size", "big"),
            ("_id", "nothex"),
            ("info", "x"),
            ("project", "lease"),
        ] {
            assert!(files.parse(&pairs(&[bad])).is_err(), "{bad:?}");
        }
        assert!(Collection::find("pcm_chunks").is_err());
    }
}
