"""Method validation: the release rules' operating characteristics measured by simulation.

``rapidrelease validate-method`` prints them as a summary a QA reviewer can file (ICH Q2(R2),
USP <1223>, Ph. Eur. 5.1.6): the sequencing sterility calls' per-lot false-FAIL rate and detection
curve (:mod:`.sterility_characteristics`), microbial flow's false-DETECTED rate and detection curve
and potency's misclassification near its limit (:mod:`.flow_characteristics`), and the reagent
background's between-library variation estimated from a lab's negative controls
(:mod:`.background_cv`). Nothing here reads or writes a lot's evidence: the simulations call the
package's own rules on simulated counts, and ``tests/benchmarks`` run the same code beside main's
earlier rules.
"""
