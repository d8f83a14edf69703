package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"strings"
	"testing"
)

func TestMaskURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// URLs.
		{"postgres://app:s3cret@db:5432/phoenix?sslmode=disable", "postgres://app:****@db:5432/phoenix?sslmode=disable"},
		{"postgres://app@db/phoenix", "postgres://app@db/phoenix"},
		{"postgres://db/phoenix", "postgres://db/phoenix"},
		{"redis://:s3cret@127.0.0.1:6379/0", "redis://:****@127.0.0.1:6379/0"},
		{"postgres://app:p@ss/w?rd@db/phoenix", "postgres://app:****@db/phoenix"},
		{"postgres://db/phoenix?sslmode=require&password=s3cret", "postgres://db/phoenix?sslmode=require&password=****"},
		{"postgres://db/phoenix?sslpassword=s3cret#frag", "postgres://db/phoenix?sslpassword=****#frag"},
		{"postgres://db/phoenix?password=s3cret&application_name=a@b", "postgres://db/phoenix?password=****&application_name=a@b"},
		{"https://play.example.com/join?ref={code}", "https://play.example.com/join?ref={code}"},
		// key=value connection strings.
		{"host=db user=app password=s3cret dbname=phoenix", "host=db user=app password=**** dbname=phoenix"},
		{"password=s3cret", "password=****"},
		{"host=db password = 's3 cr\\'et' dbname=phoenix", "host=db password = **** dbname=phoenix"},
		{"host=db password=s3\\ cret sslmode=disable", "host=db password=**** sslmode=disable"},
		{"host=db\tPassword=s3cret\nsslpassword='x'", "host=db\tPassword=****\nsslpassword=****"},
		{"host=db password=", "host=db password="},
		// lib/pq skips spaces after '=': the password here is "dbname=phoenix".
		{"host=db password= dbname=phoenix", "host=db password= ****"},
		{"host=db password='s3cret", "****"},
		{"host=db password", "****"},
		{"localhost", "localhost"},
		{"", ""},
	} {
		if got := MaskURL(tc.in); got != tc.want {
			t.Errorf("MaskURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if strings.Contains(MaskURL(tc.in), "s3") {
			t.Errorf("MaskURL(%q) leaks the password", tc.in)
		}
	}
}

// testSet is a Set with a secret, a URL and a plain setting, read from env.
func testSet(env map[string]string, out *bytes.Buffer) (*Set, *string, *string) {
	s := New("test", func(k string) string { return env[k] }, "test: a command", out)
	var secret, url, plain string
	s.Secret(&secret, "jwt-secret", "T_SECRET", "secret")
	s.String(&url, "database-url", "T_DATABASE_URL", "postgres://db/x", "database")
	s.String(&plain, "name", "T_NAME", "", "a name")
	return s, &secret, &url
}

func TestValuesMaskPasswords(t *testing.T) {
	for _, dsn := range []string{"postgres://app:s3cret@db/phoenix", "host=db user=app password=s3cret dbname=phoenix"} {
		s, _, url := testSet(map[string]string{"T_SECRET": "s3cret-secret", "T_DATABASE_URL": dsn}, &bytes.Buffer{})
		if err := s.Parse(nil); err != nil {
			t.Fatal(err)
		}
		if *url != dsn {
			t.Fatalf("database-url = %q, want %q (masking is for logs only)", *url, dsn)
		}
		logged := fmt.Sprint(s.Values()...)
		if strings.Contains(logged, "s3cret") || !strings.Contains(logged, "****") {
			t.Errorf("Values() = %s: password not masked", logged)
		}
	}
}

func TestHelpGoesToOutAndMasksDefaults(t *testing.T) {
	var out bytes.Buffer
	s, _, _ := testSet(map[string]string{"T_SECRET": "s3cret-secret", "T_DATABASE_URL": "host=db password=s3cret"}, &out)
	if err := s.Parse([]string{"--help"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"test: a command", "--database-url  [$T_DATABASE_URL]", `(default "host=db password=****")`, "--jwt-secret", `(default "****")`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help does not contain %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "s3cret") {
		t.Errorf("help leaks a secret:\n%s", out.String())
	}
}

// TestParseErrorsAreReturnedNotPrinted: a bad flag is an error naming it, and nothing (no
// usage) is written to the help output.
func TestParseErrorsAreReturnedNotPrinted(t *testing.T) {
	for _, args := range [][]string{{"--nope"}, {"extra"}, {"--name"}} {
		var out bytes.Buffer
		s, _, _ := testSet(nil, &out)
		err := s.Parse(args)
		if err == nil || errors.Is(err, flag.ErrHelp) || !strings.Contains(err.Error(), "--help") {
			t.Errorf("Parse(%q) = %v, want an error pointing at --help", args, err)
		}
		if out.Len() > 0 {
			t.Errorf("Parse(%q) printed %q", args, out.String())
		}
	}
	s, _, _ := testSet(map[string]string{"T_NAME": "x"}, &bytes.Buffer{})
	if err := s.Parse(nil); err != nil {
		t.Errorf("valid settings: %v", err)
	}
}
