package adminapi

import "github.com/labstack/echo/v4"

func (a *API) createAffiliate(c echo.Context) error    { return todo(c) }
func (a *API) listAffiliates(c echo.Context) error     { return todo(c) }
func (a *API) getAffiliate(c echo.Context) error       { return todo(c) }
func (a *API) replaceAffiliate(c echo.Context) error   { return todo(c) }
func (a *API) deleteAffiliate(c echo.Context) error    { return todo(c) }
func (a *API) setUpline(c echo.Context) error          { return todo(c) }
func (a *API) clearUpline(c echo.Context) error        { return todo(c) }
func (a *API) downline(c echo.Context) error           { return todo(c) }
func (a *API) createTier(c echo.Context) error         { return todo(c) }
func (a *API) listTiers(c echo.Context) error          { return todo(c) }
func (a *API) getTier(c echo.Context) error            { return todo(c) }
func (a *API) replaceTier(c echo.Context) error        { return todo(c) }
func (a *API) deleteTier(c echo.Context) error         { return todo(c) }
func (a *API) createRule(c echo.Context) error         { return todo(c) }
func (a *API) listRules(c echo.Context) error          { return todo(c) }
func (a *API) getRule(c echo.Context) error            { return todo(c) }
func (a *API) replaceRule(c echo.Context) error        { return todo(c) }
func (a *API) deleteRule(c echo.Context) error         { return todo(c) }
func (a *API) getHierarchyPolicy(c echo.Context) error { return todo(c) }
func (a *API) putHierarchyPolicy(c echo.Context) error { return todo(c) }
