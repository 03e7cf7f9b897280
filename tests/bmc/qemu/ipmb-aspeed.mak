# Devices file for the ipmb project's QEMU (configure --without-default-devices
# --with-devices-arm=ipmb-aspeed): the Aspeed machines, the IPMB peer and i2c-echo.
CONFIG_ASPEED_SOC=y
CONFIG_IPMB_PEER=y
CONFIG_I2C_ECHO=y
# Used by the AST2600 SoC (ADM1272: by the fby35-bmc board) but not selected by ASPEED_SOC:
# a default build gets them from other boards.
CONFIG_A15MPCORE=y
CONFIG_USB_EHCI_SYSBUS=y
CONFIG_SDHCI=y
CONFIG_ADM1272=y
