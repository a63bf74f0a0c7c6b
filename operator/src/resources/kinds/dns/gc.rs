//! Garbage collection: the ownership TXT records naming this instance in the scan's zones;
//! each stands for the records at its name.

use super::{parse_owner, TYPE};
use crate::resources::kind::GcScan;
use crate::resources::run::SpecRun;
use crate::resources::shared::zone;
use crate::resources::ResourceError;
use crate::spec::SpecKey;

pub async fn list_owned(run: &SpecRun<'_>, scan: &mut GcScan) -> Result<(), ResourceError> {
    let zones: Vec<String> = scan.zones.iter().cloned().collect();
    // A zone that cannot be read is reported on its own; the other zones still count.
    for z in zones {
        if let Err(e) = zone_records(run, scan, &z).await {
            scan.found.errors.push(format!("Route53 zone {z}: {e}"));
        }
    }
    Ok(())
}

async fn zone_records(
    run: &SpecRun<'_>,
    scan: &mut GcScan,
    zone: &str,
) -> Result<(), ResourceError> {
    let z = match zone::resolve(run, zone).await {
        Ok(z) => z,
        // A zone that no longer exists holds nothing to collect.
        Err(ResourceError::Unsatisfiable(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    let all = match zone::records(run, &z).await {
        Ok(all) => all,
        Err(ResourceError::Unsatisfiable(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    for r in all.iter() {
        if r.rtype != "TXT" || r.set_identifier.is_some() {
            continue;
        }
        for v in &r.values {
            let Some((owner, instance)) = parse_owner(v) else {
                continue;
            };
            if instance != run.aws.instance {
                continue;
            }
            if let Some(key) = SpecKey::parse(&owner) {
                scan.add(key, TYPE, format!("{}/{}/A", z.id, r.name));
            }
        }
    }
    Ok(())
}
