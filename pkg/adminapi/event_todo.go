package adminapi

import "github.com/labstack/echo/v4"

func (a *API) postEvent(c echo.Context) error       { return todo(c) }
func (a *API) postEventBatch(c echo.Context) error  { return todo(c) }
func (a *API) simulateEvent(c echo.Context) error   { return todo(c) }
func (a *API) listRewards(c echo.Context) error     { return todo(c) }
func (a *API) listCommissions(c echo.Context) error { return todo(c) }
