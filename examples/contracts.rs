//! Prints the contract of every service compiled into this program (the TaskManager example's
//! two services): name, version, scope, contract id, and the `manifest.json` a publisher would
//! write. The ids equal those of the Python reference's `taskmanager.py` (aster-rpc 0.1.2).
//!
//! Run: `cargo run --example contracts`

#[path = "taskmanager/service.rs"]
mod service;

use aster::runtime::contract::{BuiltContract, ContractError, ContractManifest, ServiceDesc};
use service::{TaskManager, TaskManagerService, TaskSession, TaskSessionService};

/// One compiled-in service: its description and its (cached) contract.
struct Entry {
    desc: ServiceDesc,
    contract: Result<&'static BuiltContract, ContractError>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let services = [
        Entry {
            desc: TaskManagerService::<TaskManager>::service_desc(),
            contract: TaskManagerService::<TaskManager>::contract(),
        },
        Entry {
            desc: TaskSessionService::<TaskSession>::service_desc(),
            contract: TaskSessionService::<TaskSession>::contract(),
        },
    ];
    for Entry { desc, contract } in services {
        let built = contract?;
        println!("service     {} v{} ({:?})", desc.name, desc.version, desc.scope);
        println!("contract_id {}", built.contract_id);
        println!("types       {}", built.types.len());
        let manifest = ContractManifest::new(built, &desc);
        println!("manifest.json:\n{}\n", manifest.to_json_pretty()?);
    }
    Ok(())
}
