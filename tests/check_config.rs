//! `citypulse check-config` accepts the shipped configuration and rejects a broken one, listing
//! every problem with its file and key, in one run.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

fn citypulse(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_citypulse"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("CITYPULSE_AUTHOR_KEY")
        .output()
        .expect("run citypulse");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn copy_config(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(common::unique_name(name));
    common::copy_config_into(&dir);
    dir
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn shipped_config_is_valid_without_secrets() {
    let (code, stdout, stderr) = citypulse(&["check-config"]);
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("Asia/Ho_Chi_Minh"), "{stdout}");
    assert!(stdout.contains("11 topics"), "{stdout}");
    assert!(stdout.contains("3 saved searches"), "{stdout}");
}

#[test]
fn broken_config_lists_every_problem_with_file_and_key() {
    let dir = copy_config("broken_config");
    edit(&dir, "citypulse.toml", "time_zone = \"Asia/Ho_Chi_Minh\"", "time_zone = \"Asia/Saigon_City\"");
    edit(&dir, "citypulse.toml", "partitions = 6", "partitions = 6\npartitons = 6");
    edit(&dir, "citypulse.toml", "threads = 2", "threads = \"two\"");
    edit(&dir, "sources.toml", "requests_per_second = 0.5", "requests_per_second = -2.0");
    edit(&dir, "citypulse.toml", "url = \"http://127.0.0.1:8123\"", "url = \"clickhouse at port 8123\"");
    edit(&dir, "sources.toml", "url = \"https://tuoitre.vn/rss/tp-hcm.rss\"", "url = \"ftp://tuoitre.vn/rss\"");
    let topics = std::fs::read_to_string(dir.join("topics.toml")).unwrap();
    let first_description = topics.lines().find(|l| l.starts_with("description_en")).unwrap().to_owned();
    edit(&dir, "topics.toml", &first_description, "description_en = \"\"");
    edit(&dir, "alerts.toml", "topic = \"flooding\"", "topic = \"floods\"");
    // A query with an unclosed parenthesis, a search naming a place the gazetteer lacks, and a
    // rule scoped by a search that does not exist.
    edit(
        &dir,
        "searches.toml",
        "query = '\"triều cường\" OR (ngập AND (triều OR \"nước lên\"))'",
        "query = '\"triều cường\" OR (ngập'",
    );
    edit(&dir, "searches.toml", "places = [\"nguyen_huu_canh\", \"binh_thanh\"]", "places = [\"atlantis\"]");
    edit(&dir, "alerts.toml", "name = \"volume_spike\"", "name = \"volume_spike\"\nsearch = \"no_such_search\"");
    // A ready token and app-only OAuth at once, and an app id without its secret.
    edit(
        &dir,
        "sources.toml",
        "subreddits = [\"VietNam\", \"saigon\"]",
        "subreddits = [\"VietNam\", \"saigon\"]\noauth_token_env = \"T\"\nclient_id_env = \"ID\"",
    );

    let (code, _, stderr) = citypulse(&["check-config", "--config", dir.to_str().unwrap()]);
    assert_ne!(code, 0, "{stderr}");
    let expected = [
        "citypulse.toml:", // line numbers are shown for parse errors
        "kafka.partitons",
        "analyze.threads",
        "city.time_zone",
        "host_quota[0].requests_per_second",
        "clickhouse.url",
        "feed[1].url",
        "topic[0].description_en",
        "rule[0].topic",
        "reddit[0].oauth_token_env",
        "reddit[0].client_secret_env",
        "searches.toml: search[0].query: column 18: this parenthesis is never closed",
        "searches.toml: search[1].places: unknown place \"atlantis\"",
        "rule[2].search: unknown search \"no_such_search\" (not in searches.toml)",
    ];
    for needle in expected {
        assert!(stderr.contains(needle), "missing {needle:?} in:\n{stderr}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn environment_overrides_apply_and_are_validated() {
    let out = Command::new(env!("CARGO_BIN_EXE_citypulse"))
        .args(["check-config"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("CITYPULSE__KAFKA__BROKERS", "not a broker list")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("kafka.brokers") && stderr.contains("not a broker list"), "{stderr}");
}
