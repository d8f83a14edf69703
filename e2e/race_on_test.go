//go:build race

package e2e

// qryRace builds the gateways with the race detector when the tests run with -race.
const qryRace = true
