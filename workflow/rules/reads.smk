if REFERENCE.index is None:

    rule build_reference_index:
        """Index the reference FASTA once (minimizers labelled with the LCA of their taxa); reused until
        a FASTA file, the taxonomy, the masking or the host sampling changes."""
        input:
            fasta=[str(p) for p in REFERENCE.fasta],
            taxonomy=str(REFERENCE.taxonomy),
            seqid2taxid=(
                [] if REFERENCE.seqid2taxid is None else str(REFERENCE.seqid2taxid)
            ),
        output:
            directory(REFDB),
        log:
            "logs/build_reference_index.log",
        conda:
            "../../envs/reads.yaml"
        threads: 1
        resources:
            # measured (tests/benchmarks/bench_host_sampling.py): about 1 minimizer per 3 bases and 48
            # bytes per minimizer at the build's peak, 0.25 s per Mb; 390 MB and 5 s for the default
            # panel. A sampled whole host genome needs less: set it with --set-resources.
            mem_mb=lambda wc: 500 + int(20 * reference_megabases()),
            runtime=lambda wc: 10 + int(reference_megabases() / 200),
        params:
            seqid2taxid=lambda wc, input: (
                f"--seqid2taxid {shlex.quote(input.seqid2taxid)}"
                if input.seqid2taxid
                else ""
            ),
            masking="" if REFERENCE.mask_low_complexity else "--no-masking",
            host_sample=REFERENCE.host_sample,
        shell:
            "rapidrelease refdb build --fasta {input.fasta:q} --taxonomy {input.taxonomy:q}"
            " {params.seqid2taxid} {params.masking} --host-sample {params.host_sample}"
            " --out {output:q} > {log:q} 2>&1"


rule classify_reads_part:
    """Classify every n-th batch of a sequencing unit's reads; an unreadable input is recorded, not raised."""
    input:
        unpack(get_classify_inputs),
    output:
        temp(f"{RESULTS}/{{lot}}/units/{{unit}}/parts/{{part}}.npz"),
    log:
        "logs/classify_reads_part/{lot}/{unit}/{part}.log",
    benchmark:
        f"{BENCHMARKS}/classify_reads_part/{{lot}}/units/{{unit}}/{{part}}.tsv"
    conda:
        "../../envs/reads.yaml"
    threads: CLASSIFY.threads
    resources:
        mem_mb=lambda wc, threads: 500 + int(index_megabytes()) + 200 * threads,
        runtime=lambda wc, input: 10 + int(input.size_mb / CLASSIFY.parts / 50),
    params:
        part=lambda wc: f"{wc.part}/{CLASSIFY.parts}",
        paired=lambda wc: "--paired" if get_unit(wc).path2 is not None else "",
        reads=lambda wc: get_read_files(get_unit(wc)),
        confidence=CLASSIFY.confidence,
        min_hit_groups=CLASSIFY.min_hit_groups,
        cram_reference=(
            ""
            if CLASSIFY.cram_reference is None
            else f"--cram-reference {shlex.quote(str(CLASSIFY.cram_reference))}"
        ),
    shell:
        "rapidrelease classify --db {input.db:q} --part {params.part} {params.paired} {params.cram_reference}"
        " --confidence {params.confidence} --min-hit-groups {params.min_hit_groups}"
        " --threads {threads} --out-partial {output:q} {params.reads:q} 2> {log:q}"


rule gather_reads_unit:
    """Add up a sequencing unit's parts: kreport, per-taxon table and reads.json."""
    input:
        unpack(get_gather_inputs),
    output:
        reads=f"{RESULTS}/{{sequenced}}/reads.json",
        kreport=f"{RESULTS}/{{sequenced}}/reads.kreport",
        taxa=f"{RESULTS}/{{sequenced}}/taxa.tsv",
        taxa_parquet=f"{RESULTS}/{{sequenced}}/taxa.parquet",
    log:
        "logs/gather_reads_unit/{sequenced}.log",
    benchmark:
        f"{BENCHMARKS}/gather_reads_unit/{{sequenced}}.tsv"
    conda:
        "../../envs/reads.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc: 500 + int(index_megabytes()),
        runtime=10,
    params:
        lot=lambda wc: get_sequenced_unit(wc).lot_id,
        unit=lambda wc: get_sequenced_unit(wc).unit_id,
        assay=lambda wc: get_sequenced_unit(wc).assay,
        role=lambda wc: get_sequenced_unit(wc).role,
        reads=lambda wc: get_read_files(get_sequenced_unit(wc)),
        out=lambda wc, output: str(Path(output.reads).parent),
    shell:
        "rapidrelease measure --lot {params.lot:q} --unit {params.unit:q}"
        " --assay {params.assay:q} --role {params.role:q} --db {input.db:q}"
        " --reads {params.reads:q} --parts {input.parts:q} --out {params.out:q} 2> {log:q}"


rule call_reads_unit:
    """Call a sequencing unit's contaminants against its lot's negative and positive controls: the
    organisms detected, the checklist, the run's limit of detection and validity (metrics.json).
    """
    input:
        unpack(get_call_inputs),
    output:
        metrics=f"{RESULTS}/{{sequenced}}/metrics.json",
        calls=f"{RESULTS}/{{sequenced}}/calls.tsv",
    log:
        "logs/call_reads_unit/{sequenced}.log",
    benchmark:
        f"{BENCHMARKS}/call_reads_unit/{{sequenced}}.tsv"
    conda:
        "../../envs/reads.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        lot=lambda wc: get_sequenced_unit(wc).lot_id,
        unit=lambda wc: get_sequenced_unit(wc).unit_id,
        config=workflow.configfiles[0],
        units_dir=lambda wc: f"{RESULTS}/{get_sequenced_unit(wc).lot_id}/units",
    shell:
        "rapidrelease call --config {params.config:q} --lot {params.lot:q} --unit {params.unit:q}"
        " --db {input.db:q} --units-dir {params.units_dir:q} 2> {log:q}"
