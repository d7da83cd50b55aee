//! The single-node controller, on shard 0: serializes metadata changes, makes each one
//! durable in the metadata log, applies it to a new image and installs that image on every
//! shard before answering (so a created topic is writable on any shard once CreateTopics
//! returns). The Raft quorum of a later issue replaces the log underneath.
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use glommio::sync::Semaphore;
use uuid::Uuid;

use super::{Shard, ShardMsg};
use crate::cluster::placement::{default_shard, PartitionPlacement};
use crate::metadata::{store, MetadataImage, MetadataRecord, TopicMeta};
use crate::model::NodeId;
use crate::storage::io::AppendFile;

#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug)]
pub enum ControllerOp {
    CreateTopics {
        topics: Vec<NewTopic>,
        validate_only: bool,
    },
    DeleteTopics {
        names: Vec<String>,
    },
    /// Replaces each topic's config map; the maps are validated by the caller.
    SetTopicConfigs {
        topics: Vec<(String, BTreeMap<String, String>)>,
        validate_only: bool,
    },
    /// Replaces the dynamic broker configs of each entity ("" or a node id); the maps are
    /// validated by the caller.
    SetBrokerConfigs {
        entities: Vec<(String, BTreeMap<String, String>)>,
        validate_only: bool,
    },
    /// Grows each topic to the given partition count.
    CreatePartitions {
        topics: Vec<(String, i32)>,
        validate_only: bool,
    },
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ControllerError {
    #[error("topic already exists")]
    AlreadyExists,
    #[error("unknown topic")]
    UnknownTopic,
    #[error("Topic currently has {current} partitions, which is higher than the requested {requested}.")]
    PartitionsNotIncreased { current: i32, requested: i32 },
    #[error("metadata log: {0}")]
    Storage(String),
}

#[derive(Debug)]
pub enum ControllerResult {
    Created(Vec<Result<Arc<TopicMeta>, ControllerError>>),
    Deleted(Vec<Result<(), ControllerError>>),
    /// For SetTopicConfigs, SetBrokerConfigs and CreatePartitions, one per item, in order.
    Changed(Vec<Result<(), ControllerError>>),
}

/// The placement records of new partitions of `topic`: on one node, this node is the only
/// replica and leads at epoch 0; the owning shard is the default spread.
fn new_partitions(shard: &Shard, topic: &str, range: std::ops::Range<i32>) -> Vec<MetadataRecord> {
    let node = NodeId(shard.node.node_id);
    range
        .map(|p| MetadataRecord::Partition {
            topic: topic.to_string(),
            partition: p,
            placement: PartitionPlacement::single(node, default_shard(topic, p, shard.count)),
        })
        .collect()
}

pub struct Controller {
    log_path: PathBuf,
    log: RefCell<Option<AppendFile>>,
    log_size: std::cell::Cell<u64>,
    lock: Semaphore,
}

impl Controller {
    pub fn new(log_dir: &std::path::Path, log_size: u64) -> Controller {
        Controller {
            log_path: store::log_path(log_dir),
            log: RefCell::new(None),
            log_size: std::cell::Cell::new(log_size),
            lock: Semaphore::new(1),
        }
    }

    async fn append(&self, record: &MetadataRecord) -> Result<(), ControllerError> {
        self.append_all(std::slice::from_ref(record)).await
    }

    /// Makes `records` durable with one write and one fdatasync.
    async fn append_all(&self, records: &[MetadataRecord]) -> Result<(), ControllerError> {
        let taken = self.log.borrow_mut().take();
        let mut file = match taken {
            Some(f) => f,
            None => AppendFile::open(&self.log_path, self.log_size.get())
                .await
                .map_err(|e| ControllerError::Storage(e.to_string()))?,
        };
        let bytes: Vec<u8> = records.iter().flat_map(store::encode_record).collect();
        let len = bytes.len() as u64;
        let r = file.append_durable(bytes).await.map_err(|e| ControllerError::Storage(e.to_string()));
        if r.is_ok() {
            self.log_size.set(self.log_size.get() + len);
        }
        *self.log.borrow_mut() = Some(file);
        r
    }

    /// Makes `record` durable and applies it to `image` (or neither, when only validating).
    async fn commit(
        &self,
        image: &mut MetadataImage,
        record: MetadataRecord,
        validate_only: bool,
    ) -> Result<(), ControllerError> {
        if !validate_only {
            self.append(&record).await?;
            image.apply(&record);
        }
        Ok(())
    }

    pub async fn execute(&self, shard: &Rc<Shard>, op: ControllerOp) -> ControllerResult {
        let _permit = self.lock.acquire_permit(1).await.expect("controller lock is never closed");
        let mut image: MetadataImage = (*shard.image()).clone();
        let before = image.version;
        let result = match op {
            ControllerOp::CreateTopics { topics, validate_only } => {
                let mut out = Vec::with_capacity(topics.len());
                for t in topics {
                    if image.topic(&t.name).is_some() {
                        out.push(Err(ControllerError::AlreadyExists));
                        continue;
                    }
                    let mut records = vec![MetadataRecord::CreateTopic {
                        name: t.name.clone(),
                        id: Uuid::new_v4(),
                        partitions: t.partitions,
                        configs: t.configs,
                    }];
                    records.extend(new_partitions(shard, &t.name, 0..t.partitions));
                    if validate_only {
                        let mut scratch = image.clone();
                        records.iter().for_each(|r| scratch.apply(r));
                        out.push(Ok(scratch.topic(&t.name).expect("just created").clone()));
                        continue;
                    }
                    match self.append_all(&records).await {
                        Ok(()) => {
                            records.iter().for_each(|r| image.apply(r));
                            tracing::info!(topic = %t.name, partitions = t.partitions, "topic created");
                            out.push(Ok(image.topic(&t.name).expect("just created").clone()));
                        }
                        Err(e) => out.push(Err(e)),
                    }
                }
                ControllerResult::Created(out)
            }
            ControllerOp::DeleteTopics { names } => {
                let mut out = Vec::with_capacity(names.len());
                for name in names {
                    if image.topic(&name).is_none() {
                        out.push(Err(ControllerError::UnknownTopic));
                        continue;
                    }
                    let record = MetadataRecord::DeleteTopic { name: name.clone() };
                    match self.append(&record).await {
                        Ok(()) => {
                            image.apply(&record);
                            tracing::info!(topic = %name, "topic deleted");
                            out.push(Ok(()));
                        }
                        Err(e) => out.push(Err(e)),
                    }
                }
                ControllerResult::Deleted(out)
            }
            ControllerOp::SetTopicConfigs { topics, validate_only } => {
                let mut out = Vec::with_capacity(topics.len());
                for (name, configs) in topics {
                    if image.topic(&name).is_none() {
                        out.push(Err(ControllerError::UnknownTopic));
                        continue;
                    }
                    let record = MetadataRecord::SetTopicConfigs { name: name.clone(), configs };
                    out.push(self.commit(&mut image, record, validate_only).await);
                    tracing::info!(topic = %name, validate_only, "topic configs changed");
                }
                ControllerResult::Changed(out)
            }
            ControllerOp::SetBrokerConfigs { entities, validate_only } => {
                let mut out = Vec::with_capacity(entities.len());
                for (entity, configs) in entities {
                    let keys: Vec<String> = configs.keys().cloned().collect();
                    let record = MetadataRecord::SetBrokerConfigs { entity: entity.clone(), configs };
                    out.push(self.commit(&mut image, record, validate_only).await);
                    tracing::info!(entity = %entity, ?keys, validate_only, "dynamic broker configs changed");
                }
                ControllerResult::Changed(out)
            }
            ControllerOp::CreatePartitions { topics, validate_only } => {
                let mut out = Vec::with_capacity(topics.len());
                for (name, partitions) in topics {
                    let Some(current) = image.topic(&name).map(|t| t.partitions) else {
                        out.push(Err(ControllerError::UnknownTopic));
                        continue;
                    };
                    if partitions <= current {
                        out.push(Err(ControllerError::PartitionsNotIncreased { current, requested: partitions }));
                        continue;
                    }
                    let mut records = vec![MetadataRecord::SetPartitionCount { name: name.clone(), partitions }];
                    records.extend(new_partitions(shard, &name, current..partitions));
                    let r = if validate_only { Ok(()) } else { self.append_all(&records).await };
                    if r.is_ok() && !validate_only {
                        records.iter().for_each(|r| image.apply(r));
                    }
                    out.push(r);
                    tracing::info!(topic = %name, from = current, to = partitions, validate_only, "partitions added");
                }
                ControllerResult::Changed(out)
            }
        };
        if image.version != before {
            let image = Arc::new(image);
            let acks = shard.all_shards().map(|to| {
                let image = image.clone();
                async move { shard.call(to, |reply| ShardMsg::ApplyMetadata { image, reply }).await }
            });
            futures::future::join_all(acks).await;
        }
        result
    }
}
