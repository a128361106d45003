//! What can be checked of the Docker deployment on a machine without Docker: docker-compose.yml
//! against the Compose specification's JSON schema, the Dockerfile with hadolint, the services it
//! runs and the ports its healthchecks ask against the configuration it mounts, and every query of
//! the Grafana dashboard (its ClickHouse macros expanded) against a migrated ClickHouse.

mod common;

use std::path::Path;
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tool(name: &str) -> Option<std::path::PathBuf> {
    common::service_env("CITYPULSE_TEST_TOOLS").map(|dir| Path::new(&dir).join(name))
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.current_dir(root()).output().expect("run tool");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn compose_file_and_dockerfile_pass_their_linters() {
    let Some(check) = tool("check-jsonschema") else { return };
    let (ok, out) = run(Command::new(check).args(["--builtin-schema", "vendor.compose-spec", "docker-compose.yml"]));
    assert!(ok, "docker-compose.yml: {out}");
    let Some(hadolint) = tool("hadolint") else { return };
    let (ok, out) = run(Command::new(hadolint).arg("Dockerfile"));
    assert!(ok, "Dockerfile: {out}");
}

#[test]
fn compose_runs_every_stage_with_healthchecks_on_the_configured_ports() {
    let compose = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    let config = schema::config::Config::load(&root().join("config")).expect("the config compose mounts is valid");
    let s = &config.services;
    for (stage, port) in [
        ("ingest", s.ingest.metrics_port),
        ("analyze", s.analyze.metrics_port),
        ("store", s.store.metrics_port),
        ("alert", s.alert.metrics_port),
    ] {
        let block = compose.split(&format!("\n  {stage}:\n")).nth(1).unwrap_or_else(|| panic!("no {stage} service"));
        let block = &block[..block.find("\n\n").unwrap_or(block.len())];
        assert!(block.contains(&format!("command: [\"{stage}\"]")), "{stage}: {block}");
        assert!(
            block.contains(&format!("http://localhost:{port}/healthz")),
            "{stage} healthcheck on metrics_port {port}"
        );
    }
    let emerging = compose.split("\n  emerging:\n").nth(1).expect("no emerging service");
    let emerging = &emerging[..emerging.find("\n\n").unwrap_or(emerging.len())];
    assert!(emerging.contains(r#"command: ["run", "--stages", "emerging"]"#), "{emerging}");
    assert!(emerging.contains(&format!("http://localhost:{}/healthz", s.run.metrics_port)), "{emerging}");
    assert!(compose.contains("replicas: 2"), "analyze scales out");
    assert!(compose.contains("env_file: .env"), "secrets come from an env file");
    let ignored = std::fs::read_to_string(root().join(".gitignore")).unwrap();
    assert!(ignored.lines().any(|l| l.trim() == ".env"), ".env is never committed");
}

/// The Grafana ClickHouse plugin's macros, expanded as it does for a time range.
fn expand(sql: &str, db: &str, from: i64, to: i64) -> String {
    let mut out = sql.replace("citypulse.", &format!("{db}."));
    while let Some(at) = out.find("$__timeFilter(") {
        let end = at + out[at..].find(')').unwrap();
        let column = &out[at + "$__timeFilter(".len()..end];
        let cond = format!("{column} >= toDateTime({from}) AND {column} <= toDateTime({to})");
        out.replace_range(at..=end, &cond);
    }
    out.replace("$__fromTime", &format!("toDateTime({from})")).replace("$__toTime", &format!("toDateTime({to})"))
}

#[test]
fn every_grafana_query_runs_against_clickhouse() {
    let Some(url) = common::clickhouse_url() else { return };
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana/dashboards/citypulse.json")).unwrap(),
    )
    .unwrap();
    let db = common::unique_name("grafana");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = clickhouse::Client::default().with_url(&url).with_validation(false);
        let database = store::Database::new(&db).unwrap();
        store::migrate(&client, &database, store::CityZone::new("Asia/Ho_Chi_Minh").unwrap()).await.unwrap();
        let http = reqwest::Client::new();
        let now = chrono::Utc::now().timestamp();
        let mut checked = 0;
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let sql = expand(target["rawSql"].as_str().unwrap(), &db, now - 7 * 86_400, now);
                assert!(!sql.contains("$__"), "a macro left: {sql}");
                let r = http.post(&url).body(sql.clone()).send().await.unwrap();
                let status = r.status();
                let body = r.text().await.unwrap();
                assert!(status.is_success(), "panel {:?}: {body}\n{sql}", panel["title"]);
                checked += 1;
            }
        }
        assert_eq!(checked, 4);
        client.query(&format!("DROP DATABASE IF EXISTS {db}")).execute().await.unwrap();
    });
}
