//! `sluicectl`: the bundled tool. Admin (topics, groups, offsets, cluster), console
//! producer and consumer, and load benchmarks, against any Kafka-protocol broker; and OS
//! tuning checks for the machine a broker runs on (`tune`, which needs no broker).
//! Every command takes `--bootstrap HOST:PORT` and `--json`; errors are one line naming
//! what failed, with a non-zero exit.
mod admin;
mod bench;
mod console;
mod groups;
mod replicas;
mod security;
mod tune;
mod util;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "sluicectl", version, about = "Admin, console and benchmark tool for Sluice (and any Kafka broker)")]
pub struct Cli {
    /// Broker to bootstrap from.
    #[arg(long, global = true, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// A Kafka client properties file with the security settings to connect with
    /// (`security.protocol`, `sasl.mechanism`, `sasl.jaas.config` or
    /// `sasl.username`/`sasl.password`, `ssl.truststore.location` / `ssl.ca.location`).
    #[arg(long, global = true)]
    pub command_config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create, list, describe, delete and alter topics.
    #[command(subcommand)]
    Topic(admin::TopicCmd),
    /// Produce lines from stdin.
    Produce(console::ProduceArgs),
    /// Consume and print records.
    Consume(console::ConsumeArgs),
    /// List, describe, reset offsets of and delete consumer groups.
    #[command(subcommand)]
    Group(groups::GroupCmd),
    /// Earliest and latest offsets per partition.
    Offsets(admin::OffsetsArgs),
    /// Brokers, controller and cluster id.
    #[command(subcommand)]
    Cluster(admin::ClusterCmd),
    /// Load benchmarks: produce, consume, end-to-end.
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// Check and apply OS tuning for low latency.
    #[command(subcommand)]
    Tune(tune::TuneCmd),
    /// Add, list and remove ACLs.
    #[command(subcommand)]
    Acl(security::AclCmd),
    /// SCRAM users.
    #[command(subcommand)]
    User(security::UserCmd),
    /// Client quotas per user, client id or ip.
    #[command(subcommand)]
    Quota(security::QuotaCmd),
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = util::load_command_config(cli.command_config.as_deref()) {
        eprintln!("sluicectl: {e}");
        std::process::exit(1);
    }
    let result = match &cli.command {
        Command::Topic(cmd) => admin::topic(&cli, cmd),
        Command::Produce(args) => console::produce(&cli, args),
        Command::Consume(args) => console::consume(&cli, args),
        Command::Group(cmd) => groups::group(&cli, cmd),
        Command::Offsets(args) => admin::offsets(&cli, args),
        Command::Cluster(cmd) => admin::cluster(&cli, cmd),
        Command::Bench(cmd) => bench::run(&cli, cmd),
        Command::Tune(cmd) => tune::run(&cli, cmd),
        Command::Acl(cmd) => security::acl(&cli, cmd),
        Command::User(cmd) => security::user(&cli, cmd),
        Command::Quota(cmd) => security::quota(&cli, cmd),
    };
    if let Err(e) = result {
        eprintln!("sluicectl: {e}");
        std::process::exit(1);
    }
}
