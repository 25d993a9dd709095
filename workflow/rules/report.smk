rule lot_report:
    """The lot's self-contained HTML report: decision first, then the evidence behind every number."""
    input:
        release=f"{RESULTS}/{{lot}}/release.json",
        records=get_lot_records,
        # once a lot is signed, the next run renders its report again to show the signatures
        signatures=get_lot_signatures,
    output:
        report(
            f"{RESULTS}/{{lot}}/report.html",
            caption="../report/lot_report.rst",
            category="Release-candidate reports",
            labels={"lot": "{lot}"},
        ),
    log:
        "logs/lot_report/{lot}.log",
    benchmark:
        f"{BENCHMARKS}/lot_report/{{lot}}.tsv"
    conda:
        "../../envs/release.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        config=CONFIG_FILE,
    shell:
        "rapidrelease report --config {params.config:q} --lot {wildcards.lot:q}"
        " --release {input.release:q} --out {output:q} 2> {log:q}"


rule lots_index:
    """Every lot with its status, time to result and links; control charts and site comparability;
    and every lot's attributes in releases.csv for a LIMS."""
    input:
        releases=expand(f"{RESULTS}/{{lot}}/release.json", lot=sorted(RUN.lots)),
        reports=expand(f"{RESULTS}/{{lot}}/report.html", lot=sorted(RUN.lots)),
        config=get_config_files,
        archived=get_archived_releases,
    output:
        index=report(
            f"{RESULTS}/index.html",
            caption="../report/lots_index.rst",
            category="Lots index",
        ),
        csv=f"{RESULTS}/releases.csv",
    log:
        "logs/lots_index.log",
    benchmark:
        f"{BENCHMARKS}/lots_index.tsv"
    conda:
        "../../envs/release.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        content=digest_of(get_config_files),
        config=CONFIG_FILE,
    shell:
        "rapidrelease index --config {params.config:q} --out {output.index:q} --csv {output.csv:q}"
        " {input.releases:q} 2> {log:q}"


rule multiqc_files:
    """The lot's MultiQC custom-content table and its sequencing units' kreports, named by lot and unit."""
    input:
        release=f"{RESULTS}/{{lot}}/release.json",
        kreports=lambda wc: list(get_lot_kreports(wc).values()),
    output:
        directory(f"{RESULTS}/{{lot}}/multiqc"),
    log:
        "logs/multiqc_files/{lot}.log",
    benchmark:
        f"{BENCHMARKS}/multiqc_files/{{lot}}.tsv"
    conda:
        "../../envs/release.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        # UNIT=PATH: the kreports are gathered once per run, in folders named by key, not by unit
        kreports=lambda wc: [f"{u}={p}" for u, p in get_lot_kreports(wc).items()],
    shell:
        "rapidrelease multiqc --release {input.release:q} --out {output:q} {params.kreports:q} 2> {log:q}"
