rule measure_unit:
    """Gate one flow unit and compute its panel's metrics; an unusable input is recorded, not raised."""
    input:
        unpack(get_unit_inputs),
    output:
        metrics=f"{RESULTS}/{{lot}}/units/{{unit}}/metrics.json",
        populations=f"{RESULTS}/{{lot}}/units/{{unit}}/populations.tsv",
        plots=f"{RESULTS}/{{lot}}/units/{{unit}}/gate_plots.json",
    log:
        "logs/measure_unit/{lot}/{unit}.log",
    benchmark:
        f"{BENCHMARKS}/measure_unit/{{lot}}/units/{{unit}}.tsv"
    conda:
        "../../envs/flow.yaml"
    threads: 1
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        assay=lambda wc: get_unit(wc).assay,
        role=lambda wc: get_unit(wc).role,
        data=lambda wc: "" if get_unit(wc).path is None else str(get_unit(wc).path),
        panel=lambda wc: (
            "" if get_unit(wc).template is None else str(get_unit(wc).template)
        ),
        out=lambda wc, output: str(Path(output.metrics).parent),
        controls=get_control_arguments,
    shell:
        "rapidrelease measure --lot {wildcards.lot:q} --unit {wildcards.unit:q}"
        " --assay {params.assay:q} --role {params.role:q}"
        " --fcs {params.data:q} --panel {params.panel:q} {params.controls}"
        " --out {params.out:q} 2> {log:q}"
