//! The worker's file confinement (`sandbox::confine_files`, Landlock), in a child process
//! of this test (a confinement is for good): files beneath the allowed path are
//! readable, nothing else is, and nothing can be written even there.

use std::{path::PathBuf, process::Command};

const CHILD: &str = "INFERCHAIN_CONFINE_ALLOWED";
const SECRET: &str = "INFERCHAIN_CONFINE_SECRET";

fn confined_child(allowed: PathBuf, secret: PathBuf) {
    inferchain_engine::sandbox::confine_files(&[allowed.as_path()]).expect("confined");
    assert_eq!(
        std::fs::read_to_string(allowed.join("model.txt")).expect("readable beneath"),
        "weights"
    );
    assert!(
        std::fs::read_dir(&allowed).is_ok(),
        "its folder is listable"
    );
    let denied = std::fs::read_to_string(&secret).expect_err("a file outside is not readable");
    assert_eq!(denied.kind(), std::io::ErrorKind::PermissionDenied);
    assert!(
        std::fs::read_dir("/").is_err(),
        "nor is the root folder listable"
    );
    assert!(
        std::fs::write(allowed.join("new.txt"), b"x").is_err(),
        "nothing is written, even beneath"
    );
    assert!(std::fs::remove_file(allowed.join("model.txt")).is_err());
}

#[test]
fn a_confined_process_reads_beneath_its_paths_and_nothing_else() {
    if let (Some(allowed), Some(secret)) = (std::env::var_os(CHILD), std::env::var_os(SECRET)) {
        confined_child(allowed.into(), secret.into());
        return;
    }
    if inferchain_engine::sandbox::landlock_abi().is_none() {
        eprintln!("this kernel has no Landlock: nothing to test");
        return;
    }
    let root = std::env::temp_dir().join(format!("inferchain-confine-{}", std::process::id()));
    let (allowed, outside) = (root.join("store"), root.join("keystore"));
    std::fs::create_dir_all(&allowed).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(allowed.join("model.txt"), "weights").expect("write");
    let secret = outside.join("secret");
    std::fs::write(&secret, "key").expect("write");
    let status = Command::new(std::env::current_exe().expect("the test binary"))
        .args([
            "--exact",
            "a_confined_process_reads_beneath_its_paths_and_nothing_else",
            "--test-threads=1",
        ])
        .env(CHILD, &allowed)
        .env(SECRET, &secret)
        .status()
        .expect("the child runs");
    assert!(status.success(), "the confined child's checks failed");
    // The parent is untouched.
    assert_eq!(std::fs::read_to_string(&secret).expect("readable"), "key");
    let _ = std::fs::remove_dir_all(root);
}
