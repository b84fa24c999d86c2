"""The provider's web application (Django): the client portal and the staff's admin."""
