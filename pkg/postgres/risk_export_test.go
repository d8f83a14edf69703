package postgres

// AssessRiskQuery is the apply-code risk statement, exposed to this package's external tests
// (its plan is checked).
const AssessRiskQuery = assessRiskQuery
