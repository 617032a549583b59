//! `lakesight model train|evaluate|score` as a local SageMaker runs them: the real binary on a
//! small generated CSV, its stdout metrics, its per-epoch JSON progress, the model directory,
//! the inference formats, and the exit-2 `ClientError:` contract; and the same commands reading
//! UNLOAD part files under S3 prefixes, from the emulator.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};
use support::{Emulator, Run};

/// The binary with an endpoint nothing listens on: local inputs must not need AWS.
fn lakesight() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakesight"));
    cmd.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9").env("AWS_REGION", "us-east-1");
    cmd
}

/// Runs the binary with `stdin` as its standard input.
fn with_stdin(cmd: &mut Command, stdin: &[u8]) -> Run {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(stdin).expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `per_entity` lines for each of 40 entities, each entity on its own /24: what the model learns.
fn planted(per_entity: u32, salt: u32) -> String {
    let mut text = String::new();
    for round in 0..per_entity {
        for e in 0..40u32 {
            let net = e.wrapping_mul(2_654_435_761) & 0xffff_ff00;
            let host = (round * 37 + e * 11 + salt * 101) % 256;
            let ip = std::net::Ipv4Addr::from(net | host);
            text.push_str(&format!("i-{e:04},{ip}\n"));
        }
    }
    text
}

struct Data {
    dir: tempfile::TempDir,
}

impl Data {
    /// Training pairs as the UNLOAD writes them (two files under a prefix, one gzipped), a
    /// validation file, and SageMaker's hyperparameter map.
    fn new() -> Data {
        let dir = tempfile::tempdir().expect("tempdir");
        let train = dir.path().join("train");
        std::fs::create_dir(&train).expect("train dir");
        let text = planted(30, 0);
        let (first, second) = text.split_at(text.len() / 2 + text[text.len() / 2..].find('\n').expect("line") + 1);
        std::fs::write(train.join("part-0"), first).expect("part-0");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(second.as_bytes()).expect("gzip");
        std::fs::write(train.join("part-1.gz"), gz.finish().expect("gzip")).expect("part-1");
        std::fs::write(dir.path().join("validation.csv"), planted(5, 1)).expect("validation");
        Data { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn hyperparameters(&self, extra: &str) -> PathBuf {
        let path = self.path("hyperparameters.json");
        let json = format!(
            r#"{{"num_entity_vectors":"80","vector_dim":"16","epochs":"4","learning_rate":"0.02","mini_batch_size":"100"{extra}}}"#
        );
        std::fs::write(&path, json).expect("hyperparameters");
        path
    }

    fn train(&self, out: &str, extra: &[&str]) -> Run {
        Run::of(
            lakesight()
                .args(["model", "train", "--train"])
                .arg(self.path("train"))
                .arg("--validation")
                .arg(self.path("validation.csv"))
                .arg("--out")
                .arg(self.path(out))
                .args(extra),
        )
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The JSON header of a model file, read as any safetensors reader would.
fn header(model: &Path) -> serde_json::Value {
    let bytes = std::fs::read(model.join("model.safetensors")).expect("model file");
    let len = u64::from_le_bytes(bytes[..8].try_into().expect("length")) as usize;
    let safetensors = json(std::str::from_utf8(&bytes[8..8 + len]).expect("utf-8"));
    json(safetensors["__metadata__"]["ipinsights"].as_str().expect("ipinsights header"))
}

#[test]
fn train_writes_a_model_prints_sagemaker_metrics_and_reports_each_epoch() {
    let data = Data::new();
    let hp = data.hyperparameters("");
    let run = data.train("model", &["--hyperparameters", hp.to_str().expect("path"), "--progress", "json"]);
    run.expect_code(0);
    let metrics = json(run.stdout.trim());
    let auc = metrics["validation:discriminator_auc"].as_f64().expect("auc");
    assert!(auc > 0.9, "validation AUC {auc}");
    assert!(metrics["train:binary_classification_cross_entropy"].as_f64().is_some_and(|l| l < 0.69), "{metrics}");
    assert!(metrics["train:binary_classification_accuracy"].as_f64().is_some_and(|a| a > 0.5), "{metrics}");
    assert_eq!(metrics.as_object().map(|m| m.len()), Some(3), "{metrics}");

    let epochs: Vec<serde_json::Value> = run.stderr.lines().map(json).collect();
    assert_eq!(epochs.len(), 4, "{}", run.stderr);
    for (i, e) in epochs.iter().enumerate() {
        assert_eq!((e["epoch"].as_u64(), e["epochs"].as_u64()), (Some(i as u64 + 1), Some(4)), "{e}");
        assert!(e["samples_per_second"].as_f64().is_some_and(|s| s > 0.0), "{e}");
        assert!(e["train_loss"].is_f64() && e["train_accuracy"].is_f64(), "{e}");
    }
    // 1200 pairs, each with one random and one shuffled negative.
    let header = header(&data.path("model"));
    assert_eq!(header["format"], "lakesight-ipinsights");
    assert_eq!(header["metrics"]["epochs"][0]["samples"], 3600);
    assert_eq!(header["hyperparameters"]["vector_dim"], 16);
    assert_eq!(header["training_data_sha256"].as_str().map(str::len), Some(64));
}

#[test]
fn invalid_hyperparameters_exit_2_with_a_client_error_last_line_and_no_model() {
    let data = Data::new();
    for (extra, name) in [
        (r#","vector_dim":"2""#, "vector_dim"),
        (
            r#","random_negative_sampling_rate":"0","shuffled_negative_sampling_rate":"0""#,
            "random_negative_sampling_rate",
        ),
    ] {
        // A repeated key: the last one wins, as in any JSON object read into a map.
        let hp = data.hyperparameters(extra);
        let run = data.train("refused", &["--hyperparameters", hp.to_str().expect("path")]);
        run.expect_code(2);
        let last = run.stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with("ClientError: ") && last.contains(name), "{}", run.stderr);
        assert!(!data.path("refused").exists());
    }
    std::fs::write(data.path("train").join("part-2"), "i-0001,10.0.0.1\ni-0002,fe80::1\n").expect("bad part");
    let run = data.train("refused", &["--hyperparameters", data.hyperparameters("").to_str().expect("path")]);
    run.expect_code(2);
    let last = run.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("ClientError: ") && last.ends_with("part-2:2: \"fe80::1\" is not a dotted IPv4 address"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_manifest_gives_the_hyperparameters_and_the_data_sizes_the_entity_table() {
    let data = Data::new();
    let manifest = data.path("stack.yaml");
    std::fs::write(
        &manifest,
        "apiVersion: lakesight.io/v1\nkind: Stack\nmetadata:\n  name: demo\nspec:\n  region: us-east-1\n  training:\n    \
         hyperparameters:\n      vectorDim: 8\n      epochs: 2\n      miniBatchSize: 200\n",
    )
    .expect("manifest");
    let run = data.train("model", &["-f", manifest.to_str().expect("path"), "--progress", "none"]);
    run.expect_code(0);
    let header = header(&data.path("model"));
    assert_eq!(header["hyperparameters"]["num_entity_vectors"], 80, "twice the 40 entities");
    assert_eq!(header["hyperparameters"]["vector_dim"], 8);
    assert_eq!(header["hyperparameters"]["mini_batch_size"], 200);
}

#[test]
fn evaluate_and_score_use_the_model_and_a_seed_reproduces_it() {
    let data = Data::new();
    let hp = data.hyperparameters("");
    for out in ["a", "b"] {
        data.train(out, &["--hyperparameters", hp.to_str().expect("path"), "--seed", "7"]).expect_code(0);
    }
    let model = data.path("a");
    let validation = data.path("validation.csv");

    let run = Run::of(
        lakesight()
            .args(["model", "evaluate", "--output", "json", "--model"])
            .arg(&model)
            .arg("--input")
            .arg(&validation),
    );
    run.expect_code(0);
    let e = json(run.stdout.trim());
    assert!(e["auc"].as_f64().is_some_and(|a| a > 0.9), "{e}");
    assert_eq!(e["pairs"], 200);
    let fprs: Vec<f64> = e["tpr_at_fpr"].as_array().expect("points").iter().filter_map(|p| p["fpr"].as_f64()).collect();
    assert_eq!(fprs, [0.0, 0.01, 0.05, 0.1]);

    let score = |model: &Path, extra: &[&str], stdin: &str| {
        with_stdin(
            lakesight().args(["model", "score", "--input", "-", "--model"]).arg(model).args(extra),
            stdin.as_bytes(),
        )
    };
    let pairs = "i-0001,10.0.0.1\ni-0002,192.168.1.9\n";
    let csv = score(&model, &[], pairs);
    csv.expect_code(0);
    assert_eq!(csv.stdout, score(&data.path("b"), &[], pairs).stdout, "same seed, same data: same model");
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines[0].starts_with("i-0001,10.0.0.1,")
            && lines[0].rsplit(',').next().is_some_and(|s| s.parse::<f32>().is_ok())
    );

    let body = r#"{"instances":[{"data":{"features":{"values":["i-0001","10.0.0.1"]}}},{"features":["i-0002","192.168.1.9"]}]}"#;
    let json_out = score(&model, &["--content-type", "application/json", "--format", "json"], body);
    json_out.expect_code(0);
    let predictions = json(&json_out.stdout)["predictions"].as_array().cloned().expect("predictions");
    let csv_scores: Vec<f64> = lines.iter().filter_map(|l| l.rsplit(',').next()?.parse().ok()).collect();
    let json_scores: Vec<f64> = predictions.iter().filter_map(|p| p["dot_product"].as_f64()).collect();
    assert_eq!(csv_scores.len(), 2);
    assert!(csv_scores.iter().zip(&json_scores).all(|(a, b)| (a - b).abs() < 1e-5), "{csv_scores:?} {json_scores:?}");

    let verbose = score(&model, &["--format", "jsonlines", "--verbose"], pairs);
    verbose.expect_code(0);
    for line in verbose.stdout.lines() {
        let p = json(line);
        let vector = |k: &str| {
            p[k].as_array().map(|a| a.iter().filter_map(|x| x.as_f64()).collect::<Vec<_>>()).unwrap_or_default()
        };
        let (e, v) = (vector("entity_embedding"), vector("ip_embedding"));
        assert_eq!((e.len(), v.len()), (16, 16), "{line}");
        let dot: f64 = e.iter().zip(&v).map(|(a, b)| a * b).sum();
        assert!((dot - p["dot_product"].as_f64().unwrap_or(f64::NAN)).abs() < 1e-4, "{line}");
    }

    let refused = score(&model, &[], "i-0001,10.0.0.1\ni-0002,10.0.0.256\n");
    refused.expect_code(2);
    let last = refused.stderr.lines().last().unwrap_or_default();
    assert_eq!(last, "ClientError: stdin:2: \"10.0.0.256\" is not a dotted IPv4 address");
}

/// Gzip, as Athena's UNLOAD compresses text output by default.
fn gzip(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).expect("gzip");
    gz.finish().expect("gzip")
}

/// `text` cut into `n` runs of whole lines.
fn parts(text: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    lines.chunks(lines.len().div_ceil(n)).map(|c| c.iter().map(|l| format!("{l}\n")).collect()).collect()
}

/// Part files named as the emulator's Athena names an UNLOAD's output, `<engine query id>_<uuid>`
/// with `.gz` when compressed, in key order; every other one gzipped. Each is written under the S3
/// prefix and, with the same name and bytes, under a local directory.
async fn put_parts(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str, dir: &Path, texts: &[String]) {
    std::fs::create_dir_all(dir).expect("local dir");
    let uuids = [
        "0b6f1d4e-2c57-4a8e-9d1f-3e5a7c9b1d20",
        "5c2e8a71-9f04-4b3d-8e6a-1d7c3f5b9a42",
        "a81d3f6c-47e2-4c9b-b05d-6f2e8a1c3d75",
    ];
    for (i, text) in texts.iter().enumerate() {
        let (name, bytes) = if i % 2 == 1 {
            (format!("20261202_000000_00007_kqzvb_{}.gz", uuids[i]), gzip(text))
        } else {
            (format!("20261202_000000_00007_kqzvb_{}", uuids[i]), text.clone().into_bytes())
        };
        std::fs::write(dir.join(&name), &bytes).expect("local part");
        s3.put_object()
            .bucket(bucket)
            .key(format!("{prefix}{name}"))
            .body(bytes.into())
            .send()
            .await
            .expect("PutObject");
    }
}

#[tokio::test]
async fn unload_parts_under_s3_prefixes_train_evaluate_and_score_as_the_same_local_files_do() {
    let emu = Emulator::start();
    let s3 = emu.s3().await;
    let bucket = "model-inputs";
    s3.create_bucket().bucket(bucket).send().await.expect("CreateBucket");
    let local = tempfile::tempdir().expect("tempdir");
    let at = |name: &str| local.path().join(name);

    let train = planted(30, 0);
    let validation = planted(5, 1);
    let mut score = planted(1, 2);
    score.extend((0..40u32).map(|e| format!("i-{e:04},203.0.113.{e}\n")));
    put_parts(&s3, bucket, "features/run-1/train/", &at("train"), &parts(&train, 3)).await;
    put_parts(&s3, bucket, "features/run-1/validation/", &at("validation"), &parts(&validation, 2)).await;
    put_parts(&s3, bucket, "pairs/", &at("pairs"), &parts(&score, 2)).await;
    // Athena's manifest beside the outputs, not under a channel's prefix: not pairs, and not read.
    let manifest = format!("s3://{bucket}/features/run-1/train/20261202_000000_00007_kqzvb_x\n");
    s3.put_object()
        .bucket(bucket)
        .key("features/run-1/20261202_000000_00007_kqzvb-manifest.csv")
        .body(manifest.into_bytes().into())
        .send()
        .await
        .expect("PutObject");
    let hp = at("hyperparameters.json");
    std::fs::write(
        &hp,
        r#"{"num_entity_vectors":"80","vector_dim":"16","epochs":"4","learning_rate":"0.02","mini_batch_size":"100"}"#,
    )
    .expect("hyperparameters");

    let s3_uri = |key: &str| format!("s3://{bucket}/{key}");
    let model = |train: &str, validation: &str, out: &Path| {
        let run = Run::of(
            emu.lakesight()
                .args(["model", "train", "--train", train, "--validation", validation, "--seed", "7"])
                .args(["--progress", "none", "--hyperparameters"])
                .arg(&hp)
                .arg("--out")
                .arg(out),
        );
        run.expect_code(0);
        run.stdout
    };
    let from_s3 = model(&s3_uri("features/run-1/train/"), &s3_uri("features/run-1/validation/"), &at("s3-model"));
    let from_files =
        model(at("train").to_str().expect("path"), at("validation").to_str().expect("path"), &at("local-model"));
    let metrics = json(from_s3.trim());
    let auc = metrics["validation:discriminator_auc"].as_f64().expect("validation:discriminator_auc");
    assert!(auc > 0.9, "validation AUC {auc}");
    assert!(metrics["train:binary_classification_accuracy"].as_f64().is_some_and(|a| a > 0.5), "{metrics}");
    // Every part, gunzipped, in key order, and nothing else: the pairs the model was trained on
    // are the planted lines as they were cut, and the same seed gives the same run as the files.
    let trained_on = header(&at("s3-model"))["training_data_sha256"].clone();
    assert_eq!(trained_on, format!("{:x}", Sha256::digest(train.as_bytes())));
    assert_eq!(from_s3, from_files, "the same metrics as from the same parts on disk");

    let evaluate = |input: &str| {
        let run = Run::of(
            emu.lakesight()
                .args(["model", "evaluate", "--output", "json", "--seed", "3", "--input", input, "--model"])
                .arg(at("s3-model")),
        );
        run.expect_code(0);
        run.stdout
    };
    let evaluation = evaluate(&s3_uri("features/run-1/validation/"));
    let e = json(evaluation.trim());
    assert_eq!(e["pairs"], 200, "{e}");
    assert!(e["auc"].as_f64().is_some_and(|a| a > 0.9), "{e}");
    assert_eq!(evaluation, evaluate(at("validation").to_str().expect("path")));

    let scored = |model: &str, input: &str| {
        let run = Run::of(emu.lakesight().args(["model", "score", "--model", model, "--input", input]));
        run.expect_code(0);
        run.stdout
    };
    let from_s3 = scored(at("s3-model").to_str().expect("path"), &s3_uri("pairs/"));
    let lines: Vec<&str> = from_s3.lines().collect();
    let pairs: Vec<&str> = score.lines().collect();
    assert_eq!(lines.len(), pairs.len(), "one line per pair:\n{from_s3}");
    for (line, pair) in lines.iter().zip(&pairs) {
        let (scored_pair, dot) = line.rsplit_once(',').expect("entity,ip,dot_product");
        assert_eq!(scored_pair, *pair);
        assert!(dot.parse::<f32>().is_ok_and(f32::is_finite), "{line}");
    }
    std::fs::write(at("pairs.csv"), &score).expect("pairs.csv");
    let from_file = scored(at("local-model").to_str().expect("path"), at("pairs.csv").to_str().expect("path"));
    assert_eq!(from_s3, from_file, "the S3 model on the S3 parts scores as the local model on one local file");
}
