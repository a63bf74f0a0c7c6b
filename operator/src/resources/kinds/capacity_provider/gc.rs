//! Garbage collection: every capacity provider of the account whose tags name an owner of
//! this instance (DescribeCapacityProviders without names). moto answers that with a 500;
//! then the providers the active clusters use are described by name (a leaked provider
//! attached to no cluster is then not found).

use aws_sdk_ecs::types::CapacityProviderField;

use super::TYPE;
use crate::aws::Service;
use crate::resources::kind::GcScan;
use crate::resources::kinds::ecs_cluster;
use crate::resources::run::SpecRun;
use crate::resources::shared::ecs_tags;
use crate::resources::shared::tags::owner_of;
use crate::resources::ResourceError;

pub async fn list_owned(run: &SpecRun<'_>, scan: &mut GcScan) -> Result<(), ResourceError> {
    let mut token: Option<String> = None;
    let mut names: Option<Vec<String>> = None;
    loop {
        let result = run
            .aws
            .read(
                Service::Ecs,
                "DescribeCapacityProviders",
                "*",
                run.aws
                    .ecs
                    .describe_capacity_providers()
                    .set_capacity_providers(names.clone())
                    .include(CapacityProviderField::Tags)
                    .set_next_token(token.take())
                    .send(),
            )
            .await;
        let page = match result {
            Ok(p) => p,
            Err(e) if names.is_none() && matches!(e.code(), Some("Response" | "Unknown")) => {
                tracing::debug!(error = %e, "listing every capacity provider failed; describing the attached ones");
                let by_name: std::collections::BTreeSet<String> = scan
                    .seen_ids(ecs_cluster::SEEN_PROVIDERS)
                    .into_iter()
                    .filter(|n| !n.starts_with("FARGATE"))
                    .collect();
                if by_name.is_empty() {
                    return Ok(());
                }
                names = Some(by_name.into_iter().collect());
                continue;
            }
            Err(e) => return Err(e),
        };
        for cp in page.capacity_providers() {
            let Some(arn) = cp.capacity_provider_arn() else {
                continue;
            };
            if let Some(owner) = owner_of(&run.aws.instance, &ecs_tags::to_map(cp.tags())) {
                scan.add(owner, TYPE, arn);
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => return Ok(()),
        }
    }
}
