//! The cluster under load: laid out here and run as `dexd start` processes, or given
//! (`--attach`) as API URLs with the chain spec that created it.
//!
//! A laid-out chain is `genesis.json` (the devnet genesis with every trader of the seed
//! funded, two markets) and one home per validator (`v<i>/validator.key`,
//! `v<i>/node.json`, `v<i>/node.log`, `v<i>/data`). Trader keys are never written: they are
//! derived from the seed (see [`crate::keys`]), so `--seed` and `--traders` name them.

use crate::LoadError;
use crate::keys;
use crate::stream::MarketPlan;
use dex_node::{ChainSpec, ConsensusParams, NodeConfig, RateQuota, ValidatorSpec, devnet};
use dex_sdk::TraderKey;
use dex_types::{AccountId, ChainId, MarketId};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Largest notional of one order, in quote units of account (e.g. 300 USDC): sizes are
/// picked up to this, so every trader's genesis funds cover thousands of orders.
const ORDER_NOTIONAL_MAX: i64 = 300;
/// Each validator's API request quota per client address in a laid-out cluster
/// (sustained and burst): far above what the generator sends.
const LOAD_REQUESTS_PER_IP: u32 = 1_000_000;

/// What to lay out.
#[derive(Clone, Debug)]
pub struct LayoutOptions {
    /// The directory (created if missing; must not hold a chain).
    pub dir: PathBuf,
    /// Validators.
    pub validators: usize,
    /// Funded traders.
    pub traders: u32,
    /// The seed of every key.
    pub seed: u64,
    /// Chain id.
    pub chain_id: u64,
    /// Each validator's mempool capacity.
    pub mempool_capacity: usize,
    /// Consensus timing.
    pub consensus: ConsensusParams,
}

/// A laid-out chain.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Its directory.
    pub dir: PathBuf,
    /// The spec written to `genesis.json`.
    pub spec: ChainSpec,
    /// The API URL of each validator.
    pub api_urls: Vec<String>,
}

/// Wall-clock milliseconds (genesis time and transaction expiries).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `count` distinct free loopback ports: all bound at once so they differ, then released
/// for the validators to bind.
fn free_ports(count: usize) -> Result<Vec<u16>, LoadError> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<_, _>>()
        .map_err(|e| LoadError::Cluster(format!("no free loopback port: {e}")))?;
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map(|a| a.port())
                .map_err(|e| LoadError::Cluster(format!("no free loopback port: {e}")))
        })
        .collect()
}

/// Write the chain; see the module docs.
pub fn layout(options: &LayoutOptions) -> Result<Layout, LoadError> {
    let file_error = |path: &Path, e: dex_node::NodeError| {
        LoadError::Cluster(format!("{}: {e}", path.display()))
    };
    if options.validators == 0 {
        return Err(LoadError::Usage(
            "a chain needs at least one validator".into(),
        ));
    }
    let spec_path = options.dir.join("genesis.json");
    if spec_path.exists() {
        return Err(LoadError::Usage(format!(
            "{} already holds a chain; choose an empty directory",
            options.dir.display()
        )));
    }
    std::fs::create_dir_all(&options.dir)
        .map_err(|e| LoadError::Cluster(format!("{}: {e}", options.dir.display())))?;
    let traders = keys::trader_accounts(&keys::trader_keys(options.seed, options.traders));
    let ports = free_ports(2 * options.validators)?;
    let mut validators = Vec::new();
    let mut api_urls = Vec::new();
    for i in 0..options.validators {
        let key = keys::validator_key(options.seed, i);
        let home = devnet::validator_home(&options.dir, i);
        key.save(&home.join("validator.key"))
            .map_err(|e| file_error(&home, e))?;
        let (p2p_port, api_port) = (ports[2 * i], ports[2 * i + 1]);
        validators.push(ValidatorSpec {
            name: format!("v{i}"),
            public_key: key.public_key(),
            voting_power: 1,
            p2p_address: format!("127.0.0.1:{p2p_port}"),
        });
        let api_listen = format!("127.0.0.1:{api_port}")
            .parse()
            .expect("bug: a loopback address parses");
        let config = NodeConfig {
            mempool_capacity: options.mempool_capacity,
            snapshot_interval_blocks: 1_000,
            // The load comes from a few loopback addresses standing for many clients: the
            // per-address limit would measure the limiter, not the validators.
            api_requests_per_ip: RateQuota {
                per_second: LOAD_REQUESTS_PER_IP,
                burst: LOAD_REQUESTS_PER_IP,
            },
            ..NodeConfig::new(
                format!("v{i}"),
                PathBuf::from("../genesis.json"),
                Some(PathBuf::from("validator.key")),
                PathBuf::from("data"),
                format!("127.0.0.1:{p2p_port}"),
                api_listen,
            )
        };
        let path = home.join("node.json");
        config.save(&path).map_err(|e| file_error(&path, e))?;
        api_urls.push(format!("http://{api_listen}"));
    }
    let spec = ChainSpec {
        genesis: devnet::devnet_genesis(options.chain_id, unix_ms(), &traders),
        validators,
        consensus: options.consensus,
    };
    spec.check()
        .map_err(|e| LoadError::Cluster(format!("the chain spec does not validate: {e}")))?;
    spec.save(&spec_path)
        .map_err(|e| file_error(&spec_path, e))?;
    Ok(Layout {
        dir: options.dir.clone(),
        spec,
        api_urls,
    })
}

/// The traders of `seed` that `spec` funds: all of the first `count`, or an error naming
/// the first that it does not fund (the spec was made with another seed or count).
pub fn funded_traders(
    spec: &ChainSpec,
    seed: u64,
    count: u32,
) -> Result<Vec<TraderKey>, LoadError> {
    // Lookup only: which accounts hold an allocation.
    let funded: HashSet<AccountId> = spec.genesis.allocations.iter().map(|a| a.account).collect();
    let keys = keys::trader_keys(seed, count);
    if let Some((i, _)) = keys
        .iter()
        .enumerate()
        .find(|(_, k)| !funded.contains(&k.account()))
    {
        return Err(LoadError::Usage(format!(
            "trader {i} of seed {seed} is not funded by this chain spec; load a chain laid out by `dex-load init` with the same --seed and at least --traders {count}"
        )));
    }
    Ok(keys)
}

/// The markets of `spec` as the stream trades them: each mid at the devnet reference
/// price (or `mids` for markets without one), sizes up to a few hundred units of quote.
pub fn market_plans(
    spec: &ChainSpec,
    mids: &[(MarketId, Decimal)],
) -> Result<Vec<MarketPlan>, LoadError> {
    let mut plans = Vec::new();
    for market in &spec.genesis.markets {
        let reference = devnet::MARKETS
            .iter()
            .find(|(id, _, _)| *id == market.id)
            .map(|(_, _, price)| *price)
            .or_else(|| {
                mids.iter()
                    .find(|(id, _)| *id == market.id)
                    .map(|(_, p)| *p)
            });
        let Some(reference) = reference else {
            continue;
        };
        let mid_ticks = (reference / market.tick_size)
            .trunc()
            .to_u64()
            .ok_or_else(|| LoadError::Cluster(format!("market {}: mid out of range", market.id)))?;
        let lot_notional = reference * market.lot_size;
        let size_lots_max = if lot_notional.is_zero() {
            1
        } else {
            (Decimal::from(ORDER_NOTIONAL_MAX) / lot_notional)
                .trunc()
                .to_u64()
                .unwrap_or(1)
                .clamp(1, 10_000)
        };
        plans.push(MarketPlan {
            id: market.id,
            mid_ticks,
            size_lots_max: size_lots_max.max(market.min_size_lots.0),
        });
    }
    if plans.is_empty() {
        return Err(LoadError::Cluster(
            "no market of the chain has a known reference price".into(),
        ));
    }
    Ok(plans)
}

/// The chain id of a spec.
pub fn chain_id(spec: &ChainSpec) -> ChainId {
    spec.genesis.chain_id
}

/// `dexd start` processes, one per validator; killed when dropped so none outlives the
/// run.
#[derive(Debug)]
pub struct Processes {
    children: Vec<Child>,
    logs: Vec<PathBuf>,
}

impl Processes {
    /// Start every validator of `layout` with `dexd`.
    pub fn spawn(dexd: &Path, layout: &Layout) -> Result<Processes, LoadError> {
        let mut processes = Processes {
            children: Vec::new(),
            logs: Vec::new(),
        };
        for i in 0..layout.spec.validators.len() {
            let home = devnet::validator_home(&layout.dir, i);
            let log_path = home.join("node.log");
            let log = std::fs::File::create(&log_path)
                .map_err(|e| LoadError::Cluster(format!("{}: {e}", log_path.display())))?;
            let err = log
                .try_clone()
                .map_err(|e| LoadError::Cluster(format!("{}: {e}", log_path.display())))?;
            let child = Command::new(dexd)
                .arg("start")
                .arg("--config")
                .arg(devnet::node_config_path(&layout.dir, i))
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err)
                .spawn()
                .map_err(|e| {
                    LoadError::Cluster(format!("starting {} failed: {e}", dexd.display()))
                })?;
            processes.children.push(child);
            processes.logs.push(log_path);
        }
        Ok(processes)
    }

    /// The process ids, in validator order.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().map(Child::id).collect()
    }

    /// An error if a validator has exited.
    pub fn check_alive(&mut self) -> Result<(), LoadError> {
        for (i, child) in self.children.iter_mut().enumerate() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(LoadError::Cluster(format!(
                    "validator v{i} exited ({status}); see {}",
                    self.logs[i].display()
                )));
            }
        }
        Ok(())
    }

    /// SIGTERM each validator (a clean stop), then kill what is left after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        for child in &self.children {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + grace;
        for child in &mut self.children {
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `dexd` next to this executable (the default of `--dexd`).
pub fn default_dexd() -> Result<PathBuf, LoadError> {
    let exe = std::env::current_exe()
        .map_err(|e| LoadError::Usage(format!("cannot locate dex-load: {e}")))?;
    let dexd = exe.with_file_name("dexd");
    if !dexd.exists() {
        return Err(LoadError::Usage(format!(
            "no dexd next to dex-load ({}); build it (cargo build --release -p dex-node) or pass --dexd",
            dexd.display()
        )));
    }
    Ok(dexd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_validates_funds_the_seeds_traders_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let options = LayoutOptions {
            dir: dir.path().to_owned(),
            validators: 4,
            traders: 25,
            seed: 11,
            chain_id: 9,
            mempool_capacity: 1_000,
            consensus: ConsensusParams::default(),
        };
        let layout = layout(&options).unwrap();
        assert_eq!(layout.api_urls.len(), 4);
        let loaded = ChainSpec::load(&dir.path().join("genesis.json")).unwrap();
        assert_eq!(loaded, layout.spec);
        for i in 0..4 {
            let config = NodeConfig::load(&devnet::node_config_path(dir.path(), i)).unwrap();
            assert_eq!(format!("http://{}", config.api_listen), layout.api_urls[i]);
            assert_eq!(config.mempool_capacity, 1_000);
            let key = dex_node::ValidatorKey::load(config.key_file.as_ref().unwrap()).unwrap();
            assert_eq!(key.public_key(), keys::validator_key(11, i).public_key());
        }
        assert_eq!(funded_traders(&loaded, 11, 25).unwrap().len(), 25);
        assert!(
            funded_traders(&loaded, 11, 26).is_err(),
            "trader 25 is not funded"
        );
        assert!(
            funded_traders(&loaded, 12, 1).is_err(),
            "another seed's traders are not"
        );
        let plans = market_plans(&loaded, &[]).unwrap();
        assert_eq!(plans.len(), 2);
        // BTC-USDC at 60 000 with a 0.01 tick and 0.0001 lots: 300 USDC is 50 lots.
        assert_eq!(plans[0].mid_ticks, 6_000_000);
        assert_eq!(plans[0].size_lots_max, 50);
        assert!(layout_again(&options).is_err());
    }

    fn layout_again(options: &LayoutOptions) -> Result<Layout, LoadError> {
        layout(options)
    }
}
