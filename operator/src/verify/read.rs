//! The reads of `verify`: the only part of it that calls AWS. Every call is a read
//! (Describe, Get, List, or IAM's policy simulator), waits on the call budget, and its failure
//! becomes [`Lookup::Unknown`] with the reason, except the answers that mean "not there"
//! (`NoSuchEntity`, `RepositoryNotFoundException`, `NoSuchHostedZone`, ids absent from a
//! filtered listing), which become [`Lookup::Missing`].

use std::collections::{BTreeMap, BTreeSet};

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::images::{ImageState, Reference};
use super::secrets::{decision, Evaluation};
use super::{capacity, roles, zones, Access, EcrImage, Facts, Lookup, Needs, Role, Subnet};
use crate::aws::{Budget, CallClass, Sdk, Service};

/// Ids per DescribeSubnets / DescribeSecurityGroups filter (AWS allows 200 values).
const IDS_PER_CALL: usize = 200;
/// Names per DescribeAutoScalingGroups call (AWS allows 100).
const GROUPS_PER_CALL: usize = 50;

/// The clients `verify` reads with, and the budget they wait on.
pub struct Reader {
    budget: Budget,
    region: String,
    iam: aws_sdk_iam::Client,
    ec2: aws_sdk_ec2::Client,
    ecr: aws_sdk_ecr::Client,
    route53: aws_sdk_route53::Client,
    autoscaling: aws_sdk_autoscaling::Client,
    /// The first call that got no answer at all (no connection, a timeout).
    unreachable: std::sync::Mutex<Option<String>>,
}

/// Why a call gave no answer, in words: the error code and message, or the HTTP status and
/// what the body says when the answer was not an AWS error at all.
fn describe<E>(operation: &str, err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let raw = err.raw_response();
    let status = raw.map(|r| r.status().as_u16());
    let body = raw
        .and_then(|r| r.body().bytes())
        .map(|b| String::from_utf8_lossy(b).to_string())
        .unwrap_or_default();
    if body.contains("has not been implemented") {
        return format!("the endpoint does not implement {operation}");
    }
    match (err.code(), status) {
        (Some(code), _) => format!(
            "{operation} failed: {code}: {}",
            err.message().unwrap_or_default()
        ),
        (None, Some(s)) => format!("{operation} gave no usable answer (HTTP {s})"),
        (None, None) => format!(
            "{operation} failed: {}",
            aws_smithy_types::error::display::DisplayErrorContext(err)
        ),
    }
}

impl Reader {
    /// Clients from `sdk`, their retries charged to `budget`.
    pub fn new(sdk: &Sdk, budget: Budget) -> Reader {
        let sdk = sdk.with_retry_charge(&budget);
        Reader {
            region: sdk
                .config
                .region()
                .map(|r| r.to_string())
                .unwrap_or_default(),
            budget,
            iam: sdk.iam(),
            ec2: sdk.ec2(),
            ecr: sdk.ecr(),
            route53: sdk.route53(),
            autoscaling: sdk.autoscaling(),
            unreachable: std::sync::Mutex::new(None),
        }
    }

    /// [`describe`], remembering a call that reached nothing (see [`Facts::unreachable`]).
    fn reason<E>(&self, operation: &str, err: &SdkError<E, HttpResponse>) -> String
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let why = describe(operation, err);
        if matches!(
            err,
            SdkError::DispatchFailure(_) | SdkError::TimeoutError(_)
        ) {
            self.unreachable
                .lock()
                .expect("unreachable lock")
                .get_or_insert_with(|| why.clone());
        }
        why
    }

    /// Read everything `needs` names. Never fails: what cannot be read is `Unknown`.
    pub async fn read(&self, needs: &Needs) -> Facts {
        let (roles, images, zones, subnets, security_groups, groups) = futures::join!(
            self.roles(&needs.roles),
            self.images(&needs.images),
            self.zones(&needs.zones),
            self.subnets(&needs.subnets),
            self.security_groups(&needs.security_groups),
            self.groups(&needs.groups),
        );
        let access = self.access(&needs.access, &roles).await;
        Facts {
            roles,
            images,
            access,
            zones,
            subnets,
            security_groups,
            groups,
            unreachable: self.unreachable.lock().expect("unreachable lock").take(),
        }
    }

    async fn roles(&self, arns: &BTreeSet<String>) -> BTreeMap<String, Lookup<Role>> {
        let mut out = BTreeMap::new();
        for arn in arns {
            let Ok(name) = roles::role_name(arn) else {
                continue;
            };
            self.budget.acquire(Service::Iam, CallClass::Read).await;
            let answer = match self.iam.get_role().role_name(name).send().await {
                Ok(o) => match o.role() {
                    Some(r) => Lookup::Found(Role {
                        arn: r.arn().to_string(),
                        trust_policy: r
                            .assume_role_policy_document()
                            .unwrap_or_default()
                            .to_string(),
                    }),
                    None => Lookup::Missing,
                },
                Err(e) if e.code() == Some("NoSuchEntity") => Lookup::Missing,
                Err(e) => Lookup::Unknown(self.reason("GetRole", &e)),
            };
            out.insert(arn.clone(), answer);
        }
        out
    }

    async fn images(&self, images: &BTreeSet<EcrImage>) -> BTreeMap<EcrImage, Lookup<ImageState>> {
        let mut out = BTreeMap::new();
        for i in images {
            if let Some(r) = i.region.as_deref().filter(|r| *r != self.region) {
                out.insert(
                    i.clone(),
                    Lookup::Unknown(format!(
                        "the registry is in {r} and verify reads {} (run it with AWS_REGION={r})",
                        self.region
                    )),
                );
                continue;
            }
            let id = match &i.reference {
                Reference::Tag(t) => aws_sdk_ecr::types::ImageIdentifier::builder().image_tag(t),
                Reference::Digest(d) => {
                    aws_sdk_ecr::types::ImageIdentifier::builder().image_digest(d)
                }
            }
            .build();
            self.budget.acquire(Service::Ecr, CallClass::Read).await;
            let answer = match self
                .ecr
                .describe_images()
                .set_registry_id(i.registry.clone())
                .repository_name(&i.repository)
                .image_ids(id)
                .send()
                .await
            {
                Ok(o) if o.image_details().is_empty() => Lookup::Found(ImageState::NoImage),
                Ok(_) => Lookup::Found(ImageState::Present),
                Err(e) => match e.code() {
                    Some("RepositoryNotFoundException") => Lookup::Found(ImageState::NoRepository),
                    Some("ImageNotFoundException") => Lookup::Found(ImageState::NoImage),
                    _ => Lookup::Unknown(self.reason("DescribeImages", &e)),
                },
            };
            out.insert(i.clone(), answer);
        }
        out
    }

    async fn zones(&self, wanted: &BTreeSet<String>) -> BTreeMap<String, Lookup<()>> {
        let mut out = BTreeMap::new();
        for z in wanted {
            self.budget.acquire(Service::Route53, CallClass::Read).await;
            let answer = if zones::is_zone_id(z) {
                let id = z.trim_start_matches("/hostedzone/");
                match self.route53.get_hosted_zone().id(id).send().await {
                    Ok(_) => Lookup::Found(()),
                    Err(e) if e.code() == Some("NoSuchHostedZone") => Lookup::Missing,
                    Err(e) => Lookup::Unknown(self.reason("GetHostedZone", &e)),
                }
            } else {
                let want = zones::norm_name(z);
                match self
                    .route53
                    .list_hosted_zones_by_name()
                    .dns_name(&want)
                    .send()
                    .await
                {
                    Ok(o)
                        if o.hosted_zones()
                            .iter()
                            .any(|h| zones::norm_name(h.name()) == want) =>
                    {
                        Lookup::Found(())
                    }
                    Ok(_) => Lookup::Missing,
                    Err(e) => Lookup::Unknown(self.reason("ListHostedZonesByName", &e)),
                }
            };
            out.insert(z.clone(), answer);
        }
        out
    }

    async fn subnets(&self, ids: &BTreeSet<String>) -> BTreeMap<String, Lookup<Subnet>> {
        self.ec2_lookup(
            ids,
            "subnet-id",
            "DescribeSubnets",
            |filter, token| {
                self.ec2
                    .describe_subnets()
                    .filters(filter)
                    .set_next_token(token)
                    .send()
            },
            |o: &aws_sdk_ec2::operation::describe_subnets::DescribeSubnetsOutput| {
                let found = o
                    .subnets()
                    .iter()
                    .filter_map(|s| {
                        Some((
                            s.subnet_id()?.to_string(),
                            Subnet {
                                vpc: s.vpc_id().unwrap_or_default().to_string(),
                                zone: s.availability_zone().unwrap_or_default().to_string(),
                            },
                        ))
                    })
                    .collect();
                (found, o.next_token().map(str::to_string))
            },
        )
        .await
    }

    async fn security_groups(&self, ids: &BTreeSet<String>) -> BTreeMap<String, Lookup<String>> {
        self.ec2_lookup(
            ids,
            "group-id",
            "DescribeSecurityGroups",
            |filter, token| {
                self.ec2
                    .describe_security_groups()
                    .filters(filter)
                    .set_next_token(token)
                    .send()
            },
            |o: &aws_sdk_ec2::operation::describe_security_groups::DescribeSecurityGroupsOutput| {
                let found = o
                    .security_groups()
                    .iter()
                    .filter_map(|g| {
                        Some((
                            g.group_id()?.to_string(),
                            g.vpc_id().unwrap_or_default().to_string(),
                        ))
                    })
                    .collect();
                (found, o.next_token().map(str::to_string))
            },
        )
        .await
    }

    /// Look `ids` up with an EC2 describe call filtered by `filter_name`, [`IDS_PER_CALL`] ids
    /// per call, every page: each id is `Found` with what `items` makes of its object,
    /// `Missing` when EC2 does not list it, or `Unknown` (why) for all when a call fails.
    async fn ec2_lookup<T, Page, E, Fut>(
        &self,
        ids: &BTreeSet<String>,
        filter_name: &str,
        operation: &str,
        fetch: impl Fn(aws_sdk_ec2::types::Filter, Option<String>) -> Fut,
        items: impl Fn(&Page) -> (Vec<(String, T)>, Option<String>),
    ) -> BTreeMap<String, Lookup<T>>
    where
        Fut: std::future::Future<Output = Result<Page, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let mut found: BTreeMap<String, T> = BTreeMap::new();
        let ids: Vec<String> = ids.iter().cloned().collect();
        for chunk in ids.chunks(IDS_PER_CALL) {
            let filter = aws_sdk_ec2::types::Filter::builder()
                .name(filter_name)
                .set_values(Some(chunk.to_vec()))
                .build();
            let mut token: Option<String> = None;
            loop {
                self.budget.acquire(Service::Ec2, CallClass::Read).await;
                match fetch(filter.clone(), token.take()).await {
                    Ok(page) => {
                        let (items, next) = items(&page);
                        found.extend(items);
                        token = next;
                        if token.is_none() {
                            break;
                        }
                    }
                    Err(e) => {
                        let why = self.reason(operation, &e);
                        return ids
                            .iter()
                            .map(|id| (id.clone(), Lookup::Unknown(why.clone())))
                            .collect();
                    }
                }
            }
        }
        ids.into_iter()
            .map(|id| {
                let answer = found.remove(&id).map_or(Lookup::Missing, Lookup::Found);
                (id, answer)
            })
            .collect()
    }

    async fn groups(&self, wanted: &BTreeSet<String>) -> BTreeMap<String, Lookup<()>> {
        let names: Vec<String> = wanted
            .iter()
            .map(|g| capacity::group_name(g).to_string())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut found: BTreeSet<String> = BTreeSet::new();
        for chunk in names.chunks(GROUPS_PER_CALL) {
            self.budget
                .acquire(Service::AutoScaling, CallClass::Read)
                .await;
            match self
                .autoscaling
                .describe_auto_scaling_groups()
                .set_auto_scaling_group_names(Some(chunk.to_vec()))
                .send()
                .await
            {
                Ok(o) => found.extend(
                    o.auto_scaling_groups()
                        .iter()
                        .filter_map(|g| g.auto_scaling_group_name())
                        .map(str::to_string),
                ),
                Err(e) => {
                    let why = self.reason("DescribeAutoScalingGroups", &e);
                    return wanted
                        .iter()
                        .map(|g| (g.clone(), Lookup::Unknown(why.clone())))
                        .collect();
                }
            }
        }
        wanted
            .iter()
            .map(|g| {
                let answer = if found.contains(capacity::group_name(g)) {
                    Lookup::Found(())
                } else {
                    Lookup::Missing
                };
                (g.clone(), answer)
            })
            .collect()
    }

    /// One simulation per (role, action) over all its resources, for roles that exist.
    async fn access(
        &self,
        wanted: &BTreeSet<(String, String, String)>,
        roles: &BTreeMap<String, Lookup<Role>>,
    ) -> BTreeMap<(String, String, String), Lookup<Access>> {
        let mut by_call: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
        for (role, action, resource) in wanted {
            by_call
                .entry((role.as_str(), action.as_str()))
                .or_default()
                .push(resource.as_str());
        }
        let mut out = BTreeMap::new();
        for ((role, action), resources) in by_call {
            let Some(Lookup::Found(r)) = roles.get(role) else {
                continue;
            };
            self.budget.acquire(Service::Iam, CallClass::Read).await;
            let answer = self
                .iam
                .simulate_principal_policy()
                .policy_source_arn(&r.arn)
                .action_names(action)
                .set_resource_arns(Some(resources.iter().map(|s| s.to_string()).collect()))
                .send()
                .await;
            let results: Result<Vec<Evaluation>, String> = match answer {
                Ok(o) => Ok(o
                    .evaluation_results()
                    .iter()
                    .map(|e| Evaluation {
                        action: e.eval_action_name().to_string(),
                        resource: e.eval_resource_name().map(str::to_string),
                        decision: e.eval_decision().as_str().to_string(),
                        per_resource: e
                            .resource_specific_results()
                            .iter()
                            .map(|x| {
                                (
                                    x.eval_resource_name().to_string(),
                                    x.eval_resource_decision().as_str().to_string(),
                                )
                            })
                            .collect(),
                    })
                    .collect()),
                Err(e) => Err(format!(
                    "IAM's policy simulator gave no answer: {}",
                    self.reason("SimulatePrincipalPolicy", &e)
                )),
            };
            for resource in resources {
                let k = (role.to_string(), action.to_string(), resource.to_string());
                let v = match &results {
                    Ok(r) => decision(r, action, resource).map_or(Lookup::Missing, Lookup::Found),
                    Err(why) => Lookup::Unknown(why.clone()),
                };
                out.insert(k, v);
            }
        }
        out
    }
}
