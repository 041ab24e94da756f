//! Benchmark (not a test): refresh of N declared domains on a real libvirtd.
//!
//! cargo run --release -p ballast-libvirt --example refresh_bench -- [N=200] [RUNS=7] [URI=qemu:///system]
//!
//! Defines N small domains carrying ownership marks (not started: starting 200 TCG guests
//! would need ~20 GB; whether a domain runs is read from the same listing either way), then
//! times `read_many` over all of them RUNS times and reports the median wall time and the
//! number of libvirt calls one refresh makes. Removes the domains at the end.

use ballast_libvirt::Instance;
use ballast_sdk::Value;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200);
    let runs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(7);
    let uri = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| "qemu:///system".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let inst = match Instance::connect(&uri, "bench-lineage") {
        Ok(i) => i,
        Err(e) => {
            eprintln!("cannot connect to {uri}: {e}");
            std::process::exit(1);
        }
    };
    let prefix = format!("ballast-bench-{}", std::process::id());
    let mut recorded = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("{prefix}-{i}");
        let xml = format!(
            "<domain type='qemu'><name>{name}</name><metadata><b:owner xmlns:b='urn:x-ballast:ownership:1' lineage='bench-lineage' address='libvirt_domain.vm[{i}]'/></metadata><memory unit='MiB'>64</memory><vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os><devices><interface type='user'/></devices></domain>"
        );
        let dom = inst
            .conn
            .conn
            .define_domain_xml(&xml)
            .expect("define a benchmark domain");
        let uuid = dom.uuid_string().expect("uuid");
        recorded.push(Value::map([
            ("id", Value::from(uuid.clone())),
            ("uuid", Value::from(uuid)),
        ]));
    }
    let domains = inst
        .session()
        .resources
        .into_iter()
        .find(|r| r.schema().type_name == "libvirt_domain")
        .expect("a domain type");
    let mut times = Vec::new();
    let mut calls = Vec::new();
    for _ in 0..runs {
        let before = inst.conn.calls();
        let t = Instant::now();
        let out = rt.block_on(domains.read_many(&recorded)).expect("refresh");
        times.push(t.elapsed().as_secs_f64());
        calls.push(inst.conn.calls() - before);
        assert!(
            out.iter().all(Option::is_some),
            "every benchmark domain refreshes"
        );
    }
    times.sort_by(f64::total_cmp);
    println!(
        "refresh of {n} domains: median {:.3} s over {runs} runs (min {:.3}, max {:.3}); {} libvirt calls per refresh",
        times[runs / 2],
        times[0],
        times[runs - 1],
        calls[0]
    );
    for d in inst.conn.conn.list_all_domains(0).unwrap_or_default() {
        if d.name().map(|x| x.starts_with(&prefix)).unwrap_or(false) {
            let _ = d.undefine();
        }
    }
}
