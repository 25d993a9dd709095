if RUN.reference.index is None:

    rule build_reference_index:
        """Index the reference FASTA once (minimizers labelled with the LCA of their taxa); reused until
        a FASTA file, the taxonomy, the masking or the host sampling changes."""
        input:
            fasta=[str(p) for p in RUN.reference.fasta],
            taxonomy=str(RUN.reference.taxonomy),
            seqid2taxid=(
                []
                if RUN.reference.seqid2taxid is None
                else str(RUN.reference.seqid2taxid)
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
            mem_mb=lambda wc: 500 + int(20 * RUN.reference.fasta_megabases()),
            runtime=lambda wc: 10 + int(RUN.reference.fasta_megabases() / 200),
        params:
            content=digest_of(get_reference_files),
            seqid2taxid=lambda wc, input: (
                f"--seqid2taxid {shlex.quote(input.seqid2taxid)}"
                if input.seqid2taxid
                else ""
            ),
            masking="" if RUN.reference.mask_low_complexity else "--no-masking",
            host_sample=RUN.reference.host_sample,
        shell:
            "rapidrelease refdb build --fasta {input.fasta:q} --taxonomy {input.taxonomy:q}"
            " {params.seqid2taxid} {params.masking} --host-sample {params.host_sample}"
            " --out {output:q} > {log:q} 2>&1"


rule classify_reads_part:
    """Classify every n-th batch of a sequencing unit's reads, once for every lot listing the same
    files (a run's controls); an unreadable input is recorded, not raised."""
    input:
        db=REFDB,
        reads=get_read_files,
    output:
        temp(f"{RESULTS}/{MEASURED_DIR}/reads/{{key}}/parts/{{part}}.npz"),
    log:
        f"logs/classify_reads_part/{MEASURED_DIR}/{{key}}/{{part}}.log",
    benchmark:
        f"{BENCHMARKS}/classify_reads_part/{MEASURED_DIR}/{{key}}/{{part}}.tsv"
    conda:
        "../../envs/reads.yaml"
    threads: CLASSIFY.threads
    resources:
        # measured (tests/benchmarks/bench_long_reads.py, 25-MB default index, summed PSS): reads at
        # the length limit (2^27 bases) take 648 MB in one process (BAM; FASTQ 546, FASTA 333; 150-bp
        # reads 80), 1,177 MB with 2 worker processes and 1,558 with 4: each worker holds a read and
        # its scan (~190 MB), and the main process the read it hands over and its pickle (~300 MB,
        # once). The index is mapped once. The distinct cells a part hits are a byte per index cell,
        # at most 32 MiB (6 MB on the default index), or for a larger index a sorted set of cell
        # numbers (rapidrelease.reads.hit_cells, 4-8 bytes a cell hit); the quarter of the index per
        # process stays as their room. Unmeasured for Kraken 2 databases of tens of GB: a site sizes
        # those with --set-resources.
        mem_mb=lambda wc, threads: int(
            500
            + (1.25 + 0.25 * threads) * RUN.reference.index_megabytes()
            + 250 * threads
            + (300 if threads > 1 else 0)
        ),
        runtime=lambda wc, input: 10 + int(input.size_mb / get_classify_parts(wc) / 50),
    params:
        content=digest_of(get_read_files),
        part=lambda wc: f"{wc.part}/{get_classify_parts(wc)}",
        paired=lambda wc: "--paired" if get_measured_unit(wc).path2 is not None else "",
        reads=lambda wc: [
            str(p)
            for p in (get_measured_unit(wc).path, get_measured_unit(wc).path2)
            if p
        ],
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
    """Add up a sequencing unit's parts: kreport, per-taxon table and its gathered record (reads.json),
    once for every lot listing the same files."""
    input:
        unpack(get_gather_inputs),
    output:
        record=f"{RESULTS}/{MEASURED_DIR}/reads/{{key}}/reads.json",
        kreport=f"{RESULTS}/{MEASURED_DIR}/reads/{{key}}/reads.kreport",
        taxa=f"{RESULTS}/{MEASURED_DIR}/reads/{{key}}/taxa.tsv",
        taxa_parquet=f"{RESULTS}/{MEASURED_DIR}/reads/{{key}}/taxa.parquet",
    log:
        f"logs/gather_reads_unit/{MEASURED_DIR}/{{key}}.log",
    benchmark:
        f"{BENCHMARKS}/gather_reads_unit/{MEASURED_DIR}/{{key}}.tsv"
    conda:
        "../../envs/reads.yaml"
    threads: 1
    resources:
        mem_mb=lambda wc: 500 + int(RUN.reference.index_megabytes()),
        runtime=10,
    params:
        content=digest_of(get_read_files),
        config=CONFIG_FILE,
    shell:
        "rapidrelease gather --config {params.config:q} --key {wildcards.key}"
        " --db {input.db:q} {input.parts:q} 2> {log:q}"


rule call_reads_unit:
    """Call a sequencing unit's contaminants against its lot's negative and positive controls: the
    organisms detected, the checklist, the run's limit of detection and validity (metrics.json).
    """
    input:
        unpack(get_call_inputs),
    output:
        record=f"{RESULTS}/{{lot}}/reads/{{unit}}/metrics.json",
        calls=f"{RESULTS}/{{lot}}/reads/{{unit}}/calls.tsv",
    log:
        "logs/call_reads_unit/{lot}/{unit}.log",
    benchmark:
        f"{BENCHMARKS}/call_reads_unit/{{lot}}/{{unit}}.tsv"
    conda:
        "../../envs/reads.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        settings=get_unit_settings,
        config=CONFIG_FILE,
    shell:
        "rapidrelease call --config {params.config:q} --lot {wildcards.lot:q} --unit {wildcards.unit:q}"
        " --db {input.db:q} 2> {log:q}"
