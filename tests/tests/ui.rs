//! `run --ui` against moto with the reference architecture, looked at in a real headless
//! Chromium: the list page shows every spec with its phase, a spec page its resources with
//! console links and its conditions, and a spec whose condition message holds `<script>` is
//! shown as text. Screenshots are saved as artifacts under `target/ui-artifacts/`
//! (`overview.png`, `spec-web.png`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ecs_operator_tests::chromium::{chromium_path, dump_dom, screenshot};
use ecs_operator_tests::fixtures::{reference_specs, write_specs, Network};
use ecs_operator_tests::{free_addr, http_get, workspace_root, Moto, OperatorProcess};

/// A ServiceSpec whose validation error quotes markup: its `Valid` condition message and last
/// error contain `<script>`.
const HOSTILE: &str = r#"apiVersion: ecs-operator.io/v1alpha1
kind: ServiceSpec
metadata: {name: hostile}
spec:
  cluster: prod
  desiredCount: "<script>document.title='pwned'</script>"
  container: {name: app, image: "nginx:1.27", port: 80, cpu: 256, memory: 512}
  network: {subnets: [subnet-0123456789abcdef0], securityGroups: [sg-0123456789abcdef0]}
"#;

const SPECS: [(&str, &str); 4] = [
    ("ClusterSpec/prod", "Ready"),
    ("ServiceSpec/web", "Ready"),
    ("ServiceSpec/admin", "Ready"),
    ("ServiceSpec/hostile", "Invalid"),
];

/// Where the test leaves its screenshots.
fn artifacts() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("ui-artifacts")
}

/// The phase shown in the list row of `key` (`<tr data-spec="KEY">`), from the HTML.
fn phase_in(html: &str, key: &str) -> Option<String> {
    let start = html.find(&format!("<tr data-spec=\"{key}\""))?;
    let row = &html[start..];
    let row = &row[..row.find("</tr>")?];
    let badge = row.find("class=\"phase p-")? + "class=\"phase p-".len();
    Some(row[badge..].split('"').next()?.to_string())
}

/// The status code of an empty `POST path`.
fn status_of_post(addr: &str, path: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    raw.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn the_web_page_lists_every_spec_with_its_phase_in_chromium_and_escapes_markup() {
    // Before anything else: without the browser the test cannot say anything.
    chromium_path();
    let moto = Moto::start_with_env(&[
        ("MOTO_ACM_VALIDATION_WAIT", "0"),
        ("MOTO_ECS_SERVICE_RUNNING", "2"),
    ]);
    let net = Network::create(&moto, "example.com").await;
    let dir = tempfile::tempdir().unwrap();
    write_specs(dir.path(), &reference_specs(&net));
    std::fs::write(dir.path().join("service-hostile.yaml"), HOSTILE).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let store = format!("file://{}", dir.path().display());
    let op = OperatorProcess::spawn(
        &[
            "run",
            "--store",
            &store,
            "--metrics-addr",
            &addr,
            "--ui",
            "--gc-interval",
            "0s",
        ],
        dir.path(),
        &moto.env(),
        tmp.path().join("operator.log"),
    );

    // Until every spec shows the phase it converges to.
    let start = Instant::now();
    loop {
        let page = http_get(&addr, "/").filter(|(code, _)| *code == 200);
        let shown: Vec<(&str, Option<String>)> = SPECS
            .iter()
            .map(|(k, _)| (*k, page.as_ref().and_then(|(_, h)| phase_in(h, k))))
            .collect();
        if SPECS
            .iter()
            .zip(&shown)
            .all(|((_, want), (_, got))| got.as_deref() == Some(*want))
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "the page did not show every spec converged within 240 s: {shown:?}\n{}",
            op.logs()
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let base = format!("http://{addr}");
    let dom = dump_dom(&format!("{base}/"));
    for (key, phase) in SPECS {
        assert_eq!(
            phase_in(&dom, key).as_deref(),
            Some(phase),
            "{key} in the DOM:\n{dom}"
        );
        let name = key.split('/').nth(1).unwrap();
        let kind = key.split('/').next().unwrap();
        assert!(
            dom.contains(&format!("href=\"/specs/{kind}/{name}\"")),
            "no link to {key}:\n{dom}"
        );
    }
    // The hostile message is text: escaped in the DOM, and no script ran or exists.
    assert!(
        dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;"),
        "the message is not shown escaped:\n{dom}"
    );
    assert!(!dom.contains("<script"), "a script element:\n{dom}");
    assert!(!dom.contains("pwned</title>"), "the script ran:\n{dom}");
    screenshot(
        &format!("{base}/"),
        &artifacts().join("overview.png"),
        1400,
        700,
    );

    // A spec page: resources with console links, conditions with transition times.
    let web = dump_dom(&format!("{base}/specs/ServiceSpec/web"));
    for needle in [
        "ecs:service",
        "ecs:task-definition",
        "elbv2:targetgroup",
        "elbv2:listener-rule",
        "route53:record",
        "https://eu-west-1.console.aws.amazon.com/ecs/v2/clusters/prod/services/",
        "https://console.aws.amazon.com/route53/v2/hostedzones#ListRecordSets/",
        "<h2>Conditions</h2>",
        "<h2>Rollout</h2>",
        "Recent reconciles",
        "converged",
    ] {
        assert!(
            web.contains(needle),
            "`{needle}` not on the web page:\n{web}"
        );
    }
    assert!(
        web.contains(">Ready</td><td class=\"s-True\">True</td>"),
        "no Ready condition:\n{web}"
    );
    screenshot(
        &format!("{base}/specs/ServiceSpec/web"),
        &artifacts().join("spec-web.png"),
        1400,
        1500,
    );

    let hostile = dump_dom(&format!("{base}/specs/ServiceSpec/hostile"));
    assert!(hostile.contains("Validation errors"), "{hostile}");
    assert!(
        hostile
            .contains("spec.desiredCount: \"&lt;script&gt;document.title='pwned'&lt;/script&gt;\""),
        "{hostile}"
    );
    assert!(!hostile.contains("<script"), "{hostile}");

    // Read-only: nothing but GET is answered, and an unknown spec is 404.
    assert_eq!(
        http_get(&addr, "/specs/ServiceSpec/nope").map(|(c, _)| c),
        Some(404)
    );
    for path in ["/", "/specs/ServiceSpec/web"] {
        assert_eq!(status_of_post(&addr, path), 405, "POST {path}");
    }
    println!("screenshots: {}", artifacts().display());
}
