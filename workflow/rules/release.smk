rule evaluate_lot:
    """Evaluate a lot's unit records against its specification: release.json, and release.csv for a LIMS."""
    input:
        records=get_lot_records,
        config=get_config_files,
    output:
        release=report(
            f"{RESULTS}/{{lot}}/release.json",
            caption="../report/release_json.rst",
            category="Release decisions (release.json)",
            labels={"lot": "{lot}"},
        ),
        csv=f"{RESULTS}/{{lot}}/release.csv",
    log:
        "logs/evaluate_lot/{lot}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate_lot/{{lot}}.tsv"
    conda:
        "../../envs/release.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        content=digest_of(get_config_files),
        config=CONFIG_FILE,
        benchmarks=BENCHMARKS,
    shell:
        "rapidrelease evaluate --config {params.config:q} --lot {wildcards.lot:q}"
        " --benchmarks {params.benchmarks:q} --out {output.release:q} --csv {output.csv:q}"
        " 2> {log:q}"
