//! A stand-alone inference worker process (the node runs the same code as
//! `inferchain-node inference-worker`): see `inferchain_engine::worker`.

fn main() {
    std::process::exit(inferchain_engine::worker::main(std::env::args_os().skip(1)));
}
