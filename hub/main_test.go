package hub_test

import (
	"testing"

	"github.com/ginws/ginws/internal/wstest"
)

func TestMain(m *testing.M) { wstest.Main(m) }
