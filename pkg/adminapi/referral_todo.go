package adminapi

import (
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

func todo(echo.Context) error { return referral.Errorf(referral.ENotFound, "not implemented yet") }
