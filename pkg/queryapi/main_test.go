package queryapi

import (
	"testing"

	"github.com/phoenix-referral/phoenix/pkg/cache/cachetest"
	"github.com/phoenix-referral/phoenix/pkg/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m, cachetest.StopClusters) }
