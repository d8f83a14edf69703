package postgres_test

import (
	"context"
	"testing"

	"github.com/phoenix-referral/phoenix/pkg/postgres"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestMigrateIsIdempotentAndConcurrent(t *testing.T) {
	db := pgtest.DB(t)
	ctx := context.Background()
	errs := make(chan error, 4)
	for range 4 {
		go func() { errs <- postgres.Migrate(ctx, db.DB, discardLogger()) }()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatalf("Migrate: %v", err)
		}
	}
	id, err := postgres.DatabaseID(ctx, db)
	if err != nil || len(id) != 36 {
		t.Fatalf("DatabaseID = %q, %v", id, err)
	}
}

func TestWithApplicationName(t *testing.T) {
	got, err := postgres.WithApplicationName("postgres://u@h:5432/db?sslmode=disable", "admin-gateway")
	if err != nil || got != "postgres://u@h:5432/db?application_name=admin-gateway&binary_parameters=yes&sslmode=disable" {
		t.Errorf("url form = %q, %v", got, err)
	}
	got, err = postgres.WithApplicationName("host=h dbname=db", "x")
	if err != nil || got != "host=h dbname=db binary_parameters=yes application_name=x" {
		t.Errorf("key=value form = %q, %v", got, err)
	}
}
