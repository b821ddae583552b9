"""Order Truth: helpdesk sidebar that reconciles returns, payments, ERP and POS for an order."""
