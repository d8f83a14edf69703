package adminapi

import (
	"github.com/labstack/echo/v4"

	"github.com/phoenix-referral/phoenix/pkg/referral"
)

func todo(echo.Context) error { return referral.Errorf(referral.ENotFound, "not implemented yet") }

func (a *API) createCampaign(c echo.Context) error    { return todo(c) }
func (a *API) listCampaigns(c echo.Context) error     { return todo(c) }
func (a *API) getCampaign(c echo.Context) error       { return todo(c) }
func (a *API) replaceCampaign(c echo.Context) error   { return todo(c) }
func (a *API) deleteCampaign(c echo.Context) error    { return todo(c) }
func (a *API) createCode(c echo.Context) error        { return todo(c) }
func (a *API) listCodes(c echo.Context) error         { return todo(c) }
func (a *API) getCode(c echo.Context) error           { return todo(c) }
func (a *API) replaceCode(c echo.Context) error       { return todo(c) }
func (a *API) patchCode(c echo.Context) error         { return todo(c) }
func (a *API) deleteCode(c echo.Context) error        { return todo(c) }
func (a *API) codeStats(c echo.Context) error         { return todo(c) }
func (a *API) applyCode(c echo.Context) error         { return todo(c) }
func (a *API) listReferrals(c echo.Context) error     { return todo(c) }
func (a *API) getReferral(c echo.Context) error       { return todo(c) }
func (a *API) setReferralStatus(c echo.Context) error { return todo(c) }
func (a *API) referralStats(c echo.Context) error     { return todo(c) }
func (a *API) leaderboard(c echo.Context) error       { return todo(c) }
