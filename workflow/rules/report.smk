rule lot_report:
    """The lot's self-contained HTML report: decision first, then the evidence behind every number."""
    input:
        release=f"{RESULTS}/{{lot}}/release.json",
        units=get_lot_unit_results,
    output:
        report(
            f"{RESULTS}/{{lot}}/report.html",
            caption="../report/lot_report.rst",
            category="Release-candidate reports",
            labels={"lot": "{lot}"},
        ),
    log:
        "logs/lot_report/{lot}.log",
    conda:
        "../../envs/release.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        unit_dirs=get_lot_unit_dirs,
    shell:
        "rapidrelease report --release {input.release:q} --out {output:q} {params.unit_dirs:q} 2> {log:q}"
