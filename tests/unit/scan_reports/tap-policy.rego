package main

# The data rules in the form TAP's sample ScanPolicy uses; the simulated scanner reads only
# these two. Severities: "Critical", "High", "Medium", "Low", "Negligible", "UnknownSeverity".
notAllowedSeverities := ["Critical", "High", "UnknownSeverity"]
ignoreCves := []

# What a real scan controller would evaluate against the CycloneDX BOM (written for this test;
# not read by the simulator).
blocked(vuln) {
  some s
  vuln.ratings[s].severity == notAllowedSeverities[_]
  not ignored(vuln)
}

ignored(vuln) {
  vuln.id == ignoreCves[_]
}

deny[msg] {
  component := input.bom.components[_]
  vuln := component.vulnerabilities[_]
  blocked(vuln)
  msg := sprintf("%s: %s", [component.name, vuln.id])
}
