//! Sans-IO cluster state (DESIGN §6, §9): what a partition knows beyond its log (leader
//! epochs, the high watermark, in-sync replicas and their progress) and where each
//! partition lives (`placement`). No glommio, no files: driven by the shard's thin
//! drivers and by seeded tests.
pub mod epochs;
pub mod partition;
pub mod placement;
