//! Shard 0's link to the controller service (`crate::controller`): it hands metadata
//! operations to the service, and installs every image the quorum commits on all shards,
//! in order. An operation is answered only once the image that holds it is installed here,
//! so a topic is writable on any shard of this broker once CreateTopics returns.
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use super::{Shard, ShardMsg};
use crate::controller::service::QuorumHandle;
use crate::metadata::MetadataImage;
use crate::sync::LocalNotify;

pub use crate::controller::ops::{ControllerError, ControllerOp, ControllerResult, IsrChangeRequest, NewTopic};

pub struct Controller {
    quorum: QuorumHandle,
    /// The metadata log index of the image installed on every shard.
    installed: Cell<u64>,
    installed_changed: LocalNotify,
}

impl Controller {
    pub fn new(quorum: QuorumHandle, installed: u64) -> Controller {
        Controller { quorum, installed: Cell::new(installed), installed_changed: LocalNotify::new() }
    }

    pub fn quorum(&self) -> &QuorumHandle {
        &self.quorum
    }

    pub async fn execute(&self, op: ControllerOp) -> Result<ControllerResult, ControllerError> {
        let (result, index) = self.quorum.execute(op).await;
        while self.installed.get() < index {
            self.installed_changed.notified().await;
        }
        result
    }

    /// Installs each image the quorum applies on every shard, oldest first (a slow shard
    /// skips to the newest). Runs for the life of the shard.
    pub async fn install_images(self: Rc<Self>, shard: Rc<Shard>) {
        let mut images = self.quorum.images.clone();
        loop {
            if images.changed().await.is_err() {
                return;
            }
            let image: Arc<MetadataImage> = images.borrow_and_update().clone();
            if image.log_index <= self.installed.get() {
                continue;
            }
            let acks = shard.all_shards().map(|to| {
                let image = image.clone();
                let shard = shard.clone();
                async move { shard.call(to, |reply| ShardMsg::ApplyMetadata { image, reply }).await }
            });
            futures::future::join_all(acks).await;
            self.installed.set(image.log_index);
            self.installed_changed.notify_all();
        }
    }
}
