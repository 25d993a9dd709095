rule measure_flow_unit:
    """Gate one flow tube against the lot's control tubes and compute its panel's metrics; an
    unusable input is recorded in its record, not raised."""
    input:
        get_flow_inputs,
    output:
        record=f"{RESULTS}/{{lot}}/flow/{{unit}}/metrics.json",
        populations=f"{RESULTS}/{{lot}}/flow/{{unit}}/populations.tsv",
        plots=f"{RESULTS}/{{lot}}/flow/{{unit}}/gate_plots.json",
    log:
        "logs/measure_flow_unit/{lot}/{unit}.log",
    benchmark:
        f"{BENCHMARKS}/measure_flow_unit/{{lot}}/{{unit}}.tsv"
    conda:
        "../../envs/flow.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        settings=get_unit_settings,
        content=digest_of(get_flow_inputs),
        config=CONFIG_FILE,
    shell:
        "rapidrelease measure --config {params.config:q} --lot {wildcards.lot:q} --unit {wildcards.unit:q}"
        " 2> {log:q}"
