// Package deploy checks the deployment artefacts against each other and against the binaries:
// docker-compose.yml (loaded with the Compose specification's own loader), the Dockerfile, and
// the Helm chart in charts/phoenix (linted, rendered, and every object decoded strictly into its
// Kubernetes API type, so a misspelt field fails). It holds no code outside its tests, which need
// neither a network nor Docker; the chart checks need the helm CLI (`bash scripts/helm.sh`).
package deploy
